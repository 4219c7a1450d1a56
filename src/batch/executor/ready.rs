//! A task becomes ready: its dependencies all succeeded, so its argument template is
//! resolved against their outputs (one set of arguments, or one per `foreach` element, in
//! input order), checked against the tool's input schema, recorded, and its calls queued by
//! priority. Resolution is a pure function of the outputs; nothing here calls a tool.

use std::cmp::Reverse;

use serde_json::{Map, Value};

use super::Exec;
use crate::batch::plan::{FOREACH_ITEM, TaskSpec};
use crate::batch::refs::{self, RefPath};
use crate::batch::schema;
use crate::batch::state::bound;

/// The arguments of each call of `spec`: one set, or one per element of its `foreach`
/// array (at most `max_items`, in input order), each checked against `input_schema`.
/// `lookup` answers a task id with that task's full output.
pub(super) fn resolve_calls(
    spec: &TaskSpec,
    input_schema: Option<&Value>,
    lookup: &dyn Fn(&str) -> Option<Value>,
) -> Result<Vec<Map<String, Value>>, String> {
    let all = match &spec.foreach {
        None => vec![refs::resolve(&spec.args, lookup)?],
        Some(foreach) => {
            let path = RefPath::parse(&foreach.over)?;
            let root = lookup(&path.root)
                .ok_or_else(|| format!("foreach.over: no output for `{}`", path.root))?;
            let items = match path.lookup(&root)? {
                Value::Array(items) => items,
                other => {
                    return Err(format!(
                        "foreach.over `{}` is {}, not an array",
                        foreach.over,
                        refs::kind(other)
                    ));
                }
            };
            let max = foreach.max_items.unwrap_or(0);
            if items.len() > max {
                return Err(format!(
                    "foreach.over `{}` has {} elements, more than max_items {max}",
                    foreach.over,
                    items.len()
                ));
            }
            items
                .iter()
                .map(|item| {
                    let scope = |root: &str| {
                        if root == FOREACH_ITEM {
                            Some(item.clone())
                        } else {
                            lookup(root)
                        }
                    };
                    refs::resolve(&spec.args, &scope)
                })
                .collect::<Result<Vec<_>, String>>()?
        }
    };
    if let Some(schema) = input_schema {
        for args in &all {
            let problems = schema::check(schema, args, false);
            if !problems.is_empty() {
                return Err(format!(
                    "resolved arguments do not match the input schema of `{}`: {}",
                    spec.tool,
                    problems.join("; ")
                ));
            }
        }
    }
    Ok(all)
}

impl Exec {
    /// Resolves a task whose dependencies all succeeded and queues its calls (an empty
    /// `foreach` succeeds at once with `[]`; a resolution error fails the task).
    pub(super) fn make_ready(&mut self, task: usize) {
        let plan = self.plan.clone();
        let spec = &plan.plan.tasks[task];
        let resolved = {
            let outputs = &self.outputs;
            let index = &self.index;
            let lookup = |root: &str| index.get(root).and_then(|&i| outputs[i].clone());
            resolve_calls(spec, plan.nodes[task].input_schema.as_deref(), &lookup)
        };
        let all = match resolved {
            Ok(all) => all,
            Err(error) => return self.task_failed(task, error),
        };
        let shown = if spec.foreach.is_some() {
            Value::Array(all.iter().cloned().map(Value::Object).collect())
        } else {
            all.first()
                .cloned()
                .map(Value::Object)
                .unwrap_or(Value::Null)
        };
        let max = self.options.result_max_bytes;
        {
            let mut record = self.record();
            let entry = &mut record.tasks[task];
            entry.args = Some(bound(shown, max));
            if spec.foreach.is_some() {
                entry.items = Some(all.len());
            }
        }
        let units = all.len();
        let priority = plan.nodes[task].priority;
        let exec = &mut self.tasks[task];
        exec.remaining = units;
        exec.unit_outputs = vec![None; units];
        exec.attempts = vec![0; units];
        exec.args = all;
        if units == 0 {
            self.task_succeeded(task, Value::Array(Vec::new()));
            return;
        }
        for unit in 0..units {
            self.ready.push((priority, Reverse(task), Reverse(unit)));
        }
    }
}
