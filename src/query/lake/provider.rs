//! [`LakeTable`], the lake folder as a DataFusion table: each scan lists and prunes the hour
//! folders and plans a [`LakeScanExec`] over their objects.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

use super::exec::{LakeScanExec, ScanParts};
use super::listing::{list_hour_folders, list_objects};
use super::prune::{prune, prunes_datehour, prunes_row_groups, row_group_predicate};
use super::{ScanCounters, table_schema};

/// The lake folder as a table.
#[derive(Debug)]
pub struct LakeTable {
    /// Partitions reading right now (over all queries): lets callers see that a cancelled
    /// query's scan threads have stopped.
    active: Arc<AtomicUsize>,
    root: PathBuf,
    /// Start of each year folder's name (the part of the Firehose prefix after its last `/`).
    year_prefix: String,
    schema: SchemaRef,
}

impl LakeTable {
    /// `root` holds the `YYYY` folders (after any `dir/` part of the prefix); `year_prefix` is
    /// the rest of the prefix (usually empty).
    pub fn new(root: PathBuf, year_prefix: String, active: Arc<AtomicUsize>) -> Self {
        LakeTable {
            active,
            root,
            year_prefix,
            schema: table_schema(),
        }
    }
}

#[async_trait]
impl TableProvider for LakeTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if prunes_datehour(f) || prunes_row_groups(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let counters = state
            .config()
            .get_extension::<ScanCounters>()
            .unwrap_or_default();
        let root = self.root.clone();
        let year_prefix = self.year_prefix.clone();
        let folders = tokio::task::spawn_blocking(move || list_hour_folders(&root, &year_prefix))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let names: Vec<String> = folders.iter().map(|(d, _)| d.clone()).collect();
        let keep = prune(state, filters, &names);
        let total_folders = folders.len();
        let kept: Vec<(String, PathBuf)> = folders
            .into_iter()
            .zip(keep)
            .filter_map(|(f, k)| k.then_some(f))
            .collect();
        let kept_folders = kept.len();
        let objects = tokio::task::spawn_blocking(move || list_objects(kept))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&projection)?);
        let partitions = state.config().target_partitions().clamp(1, 64);
        let predicate = row_group_predicate(state, filters);
        Ok(Arc::new(LakeScanExec::new(
            objects,
            partitions,
            ScanParts {
                schema,
                projection,
                limit,
                counters,
                active: self.active.clone(),
                predicate,
                folders: (kept_folders, total_folders),
            },
        )))
    }
}
