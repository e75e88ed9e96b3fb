//! Pruning by `datehour`: which filters can skip hour folders, and which folders pass them.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::Expr;
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};

use super::DATEHOUR;

/// True if `expr` can prune hour folders: it reads `datehour` and no other column, and its value
/// does not change from one evaluation to the next.
pub(super) fn prunes_datehour(expr: &Expr) -> bool {
    let refs = expr.column_refs();
    if refs.is_empty() || refs.iter().any(|c| c.name != DATEHOUR) {
        return false;
    }
    plain(expr)
}

/// True if `expr` can prune Parquet row groups by their statistics: it reads only the
/// readings' columns (not `datehour`, which is not in the objects) and is plain.
pub(super) fn prunes_row_groups(expr: &Expr) -> bool {
    let refs = expr.column_refs();
    if refs.is_empty() || refs.iter().any(|c| c.name == DATEHOUR) {
        return false;
    }
    plain(expr)
}

/// The row-group pruning predicate of a scan's filters: `None` when none can prune.
pub(super) fn row_group_predicate(
    state: &dyn Session,
    filters: &[Expr],
) -> Option<Arc<PruningPredicate>> {
    let usable: Vec<Expr> = filters
        .iter()
        .filter(|f| prunes_row_groups(f))
        .filter_map(|f| unqualified(f.clone()))
        .collect();
    let conjunction = usable.into_iter().reduce(|a, b| a.and(b))?;
    let schema = super::table_schema();
    let df_schema = DFSchema::try_from(schema.as_ref().clone()).ok()?;
    let physical = state.create_physical_expr(conjunction, &df_schema).ok()?;
    // `build` gives `None` for a predicate that cannot prune.
    PruningPredicateBuilder::new()
        .with_file_schema(schema)
        .build(physical)
}

/// `expr` with its columns unqualified (the table's name dropped).
fn unqualified(expr: Expr) -> Option<Expr> {
    expr.transform(|e| {
        Ok(match e {
            Expr::Column(c) => Transformed::yes(Expr::Column(Column::new_unqualified(c.name))),
            other => Transformed::no(other),
        })
    })
    .ok()
    .map(|t| t.data)
}

/// Not volatile, and no subquery, outer reference, aggregate, window or placeholder.
fn plain(expr: &Expr) -> bool {
    if expr.is_volatile() {
        return false;
    }
    let mut plain = true;
    let _ = expr.apply(|e| {
        if matches!(
            e,
            Expr::ScalarSubquery(_)
                | Expr::InSubquery(_)
                | Expr::Exists(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::AggregateFunction(_)
                | Expr::WindowFunction(_)
                | Expr::Placeholder(_)
        ) {
            plain = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    plain
}

/// Which hour folders pass every `datehour` filter. A filter that cannot be evaluated prunes
/// nothing (the filter is inexact: DataFusion applies it to the rows anyway).
pub(super) fn prune(state: &dyn Session, filters: &[Expr], datehours: &[String]) -> Vec<bool> {
    let mut keep = vec![true; datehours.len()];
    if datehours.is_empty() {
        return keep;
    }
    let schema = Arc::new(Schema::new(vec![Field::new(
        DATEHOUR,
        DataType::Utf8,
        true,
    )]));
    let Ok(df_schema) = DFSchema::try_from(schema.as_ref().clone()) else {
        return keep;
    };
    let values: ArrayRef = Arc::new(StringArray::from_iter_values(datehours.iter()));
    let Ok(batch) = RecordBatch::try_new(schema, vec![values]) else {
        return keep;
    };
    for filter in filters.iter().filter(|f| prunes_datehour(f)) {
        let Some(unqualified) = unqualified(filter.clone()) else {
            continue;
        };
        let evaluated = state
            .create_physical_expr(unqualified, &df_schema)
            .and_then(|p| p.evaluate(&batch))
            .and_then(|v| v.into_array(datehours.len()));
        let Ok(array) = evaluated else {
            tracing::debug!(%filter, "datehour filter not evaluated for pruning");
            continue;
        };
        let Some(passed) = array.as_any().downcast_ref::<BooleanArray>() else {
            continue;
        };
        for (i, k) in keep.iter_mut().enumerate() {
            // NULL (unknown) means no row of that folder can pass either.
            *k = *k && passed.is_valid(i) && passed.value(i);
        }
    }
    keep
}
