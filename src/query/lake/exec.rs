//! [`LakeScanExec`], the physical scan: the objects spread over partitions, each partition read
//! on a blocking thread that hands its batches over a channel of two.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
};

use datafusion::physical_optimizer::pruning::PruningPredicate;

use super::ScanCounters;
use super::listing::LakeObject;
use super::read::PartitionScan;

/// The physical scan: one partition per group of objects.
#[derive(Debug)]
pub struct LakeScanExec {
    schema: SchemaRef,
    projection: Vec<usize>,
    partitions: Vec<Vec<LakeObject>>,
    limit: Option<usize>,
    counters: Arc<ScanCounters>,
    active: Arc<AtomicUsize>,
    predicate: Option<Arc<PruningPredicate>>,
    folders: (usize, usize),
    files: usize,
    listed_bytes: u64,
    properties: Arc<PlanProperties>,
}

/// What a scan is about, besides its objects.
pub(super) struct ScanParts {
    pub(super) schema: SchemaRef,
    pub(super) projection: Vec<usize>,
    pub(super) limit: Option<usize>,
    pub(super) counters: Arc<ScanCounters>,
    pub(super) active: Arc<AtomicUsize>,
    /// Filters for Parquet row groups' statistics.
    pub(super) predicate: Option<Arc<PruningPredicate>>,
    /// (hour folders kept, hour folders listed)
    pub(super) folders: (usize, usize),
}

impl LakeScanExec {
    pub(super) fn new(objects: Vec<LakeObject>, max_partitions: usize, parts: ScanParts) -> Self {
        let ScanParts {
            schema,
            projection,
            limit,
            counters,
            active,
            predicate,
            folders,
        } = parts;
        let n = max_partitions.min(objects.len()).max(1);
        let files = objects.len();
        let listed_bytes = objects.iter().map(|o| o.size).sum();
        // Round-robin in time order: each partition reads its share oldest first.
        let mut partitions = vec![Vec::new(); n];
        for (i, o) in objects.into_iter().enumerate() {
            partitions[i % n].push(o);
        }
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(n),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        LakeScanExec {
            schema,
            projection,
            partitions,
            limit,
            counters,
            active,
            predicate,
            folders,
            files,
            listed_bytes,
            properties,
        }
    }
}

impl DisplayAs for LakeScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let columns: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "LakeScanExec: hour folders {}/{}, objects {}, bytes {}, columns [{}]{}",
                self.folders.0,
                self.folders.1,
                self.files,
                self.listed_bytes,
                columns.join(", "),
                self.limit
                    .map(|l| format!(", limit {l}"))
                    .unwrap_or_default()
            ),
            DisplayFormatType::TreeRender => write!(
                f,
                "folders={}/{}\nobjects={}\nbytes={}",
                self.folders.0, self.folders.1, self.files, self.listed_bytes
            ),
        }
    }
}

impl ExecutionPlan for LakeScanExec {
    fn name(&self) -> &str {
        "LakeScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let Some(objects) = self.partitions.get(partition).cloned() else {
            return Err(DataFusionError::Internal(format!(
                "LakeScanExec has {} partitions, asked for {partition}",
                self.partitions.len()
            )));
        };
        let scan = PartitionScan {
            schema: self.schema.clone(),
            projection: self.projection.clone(),
            batch_size: context.session_config().batch_size().max(1),
            limit: self.limit,
            counters: self.counters.clone(),
            predicate: self.predicate.clone(),
        };
        let mut builder = RecordBatchReceiverStreamBuilder::new(self.schema.clone(), 2);
        let tx = builder.tx();
        let active = self.active.clone();
        builder.spawn_blocking(move || {
            let _running = Running::new(active);
            scan.run(
                objects,
                |batch| tx.blocking_send(Ok(batch)).is_ok(),
                || tx.is_closed(),
            )
        });
        Ok(builder.build())
    }
}

/// Counts a running partition for as long as it lives.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn new(active: Arc<AtomicUsize>) -> Self {
        active.fetch_add(1, Ordering::SeqCst);
        Running(active)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
