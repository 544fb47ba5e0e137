//! [`PipelineError`]: why an item (or the run) failed.

use std::error::Error;

/// Why a pipeline item failed, or why the whole run stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A stage function returned an error for this item.
    #[error("pipeline stage {stage:?} failed on item {item}: {source}")]
    Failed {
        /// The stage's name.
        stage: String,
        /// The item's position in the input, from 0.
        item: u64,
        /// The error the stage returned.
        source: Box<dyn Error + Send + Sync>,
    },
    /// A stage function panicked on this item; the worker survived and went on.
    #[error("pipeline stage {stage:?} panicked on item {item}: {message}")]
    Panicked {
        /// The stage's name.
        stage: String,
        /// The item's position in the input, from 0.
        item: u64,
        /// The panic message.
        message: String,
    },
    /// The input iterator panicked; no more items were read.
    #[error("the pipeline's input iterator panicked: {message}")]
    SourcePanicked {
        /// The panic message.
        message: String,
    },
}

impl PipelineError {
    /// The name of the stage that failed (`None` for the input iterator).
    pub fn stage(&self) -> Option<&str> {
        match self {
            Self::Failed { stage, .. } | Self::Panicked { stage, .. } => Some(stage),
            Self::SourcePanicked { .. } => None,
        }
    }

    /// The failed item's position in the input (`None` for the input iterator).
    pub fn item(&self) -> Option<u64> {
        match self {
            Self::Failed { item, .. } | Self::Panicked { item, .. } => Some(*item),
            Self::SourcePanicked { .. } => None,
        }
    }
}
