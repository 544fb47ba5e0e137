//! crew's rows of `crew bench cluster` (wired once `crew::cluster` lands).

use super::{ClusterConfig, ClusterMeasurement, Key, CASES};
use crate::harness::Measurement;

/// crew's cluster, started at its first measurement.
#[derive(Debug, Default)]
pub(crate) struct CrewCluster;

impl CrewCluster {
    pub(crate) fn measurements<'a>(
        &'a self,
        config: &'a ClusterConfig,
    ) -> Vec<ClusterMeasurement<'a>> {
        CASES
            .iter()
            .map(|&case| {
                Measurement::unavailable(
                    Key {
                        case,
                        implementation: "crew-cluster",
                        n: config.n(case),
                    },
                    "crew::cluster is not in this build yet",
                )
            })
            .collect()
    }
}
