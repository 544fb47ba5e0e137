//! A download → resize → upload pipeline with a live view: one line for the results, one per
//! stage with the items it passed on, its rate and ETA, the items it took in, its input queue
//! and how busy its workers are. Here `resize` is the slow stage: its queue stays full and its
//! workers near 100% busy while `upload` waits.
//!
//! Drawn on standard error while it is a terminal (`cargo run -p crew --example
//! pipeline_live_view`), and not at all when it is piped or redirected.
//!
//! Prints, when the run is over:
//! ```text
//! 294 images uploaded, 6 failed
//! download: in 300, out 300, failed 0
//! resize: in 300, out 300, failed 6
//! upload: in 300, out 300, failed 0
//! ```

use std::time::Duration;

use crew::pipeline::Pipeline;
use crew::progress::Progress;

const IMAGES: u32 = 300;

fn download(n: u32) -> Vec<u8> {
    std::thread::sleep(Duration::from_millis(1));
    vec![n as u8; 64]
}

fn resize(image: Vec<u8>) -> Result<Vec<u8>, String> {
    std::thread::sleep(Duration::from_millis(8));
    if image[0] % 50 == 7 {
        return Err(format!("image {} is corrupt", image[0]));
    }
    Ok(image[..16].to_vec())
}

fn upload(image: Vec<u8>) -> usize {
    std::thread::sleep(Duration::from_millis(2));
    image.len()
}

fn main() -> std::io::Result<()> {
    let mut run = Pipeline::from_iter(0..IMAGES)
        .map("download", 4, download)
        .stage("resize", 2, resize)
        .map("upload", 4, upload)
        .collect_errors() // a corrupt image is reported, the others go on
        .progress(Progress::bar("images"))
        .run()?;
    let (mut uploaded, mut failed) = (0, 0);
    for result in run.by_ref() {
        match result {
            Ok(_) => uploaded += 1,
            Err(_) => failed += 1,
        }
    }
    println!("{uploaded} images uploaded, {failed} failed");
    for stage in run.stats() {
        println!(
            "{}: in {}, out {}, failed {}",
            stage.name, stage.input, stage.output, stage.errors
        );
    }
    Ok(())
}
