//! The plan a batch runs: what a planner (an LLM, or a script) submits, as JSON.
//!
//! `{"goal", "tasks": [{"id", "tool", "args", "depends_on", "foreach"?, "timeout_ms"?,
//! "retries"?}], "output": [ids]}`. This file owns only the shape and its parsing (with the
//! JSON path of a type error); whether a plan makes sense is `validate.rs`'s job, and
//! nothing here calls a tool.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The built-in tool that asks the configured LLM to write, analyse or summarise.
pub const LLM_GENERATE: &str = "llm.generate";

/// The reference root that names the current element inside a `foreach` task.
pub const FOREACH_ITEM: &str = "item";

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// What the plan achieves, in a sentence; shown in status and history.
    #[serde(default)]
    pub goal: String,
    /// The tasks, in any order (dependencies decide the order of execution).
    pub tasks: Vec<TaskSpec>,
    /// The ids whose outputs make up the batch result; empty means every task no other
    /// task depends on.
    #[serde(default)]
    pub output: Vec<String>,
}

/// One task: a call of one tool (or one call per element with `foreach`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Unique within the plan; what references and `depends_on` use.
    pub id: String,
    /// A merged catalogue name (`fixture__echo`) or [`LLM_GENERATE`].
    pub tool: String,
    /// The arguments; may contain `{"$ref": "t1.path"}` and `"...${t1.path}..."`.
    #[serde(default)]
    pub args: Map<String, Value>,
    /// The tasks that must succeed first. Every task referenced in `args` or `foreach`
    /// must be listed.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Fan the task out over an array produced by a dependency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreach: Option<Foreach>,
    /// Per-attempt timeout for this task, overriding `execution.task_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Retries for this task, overriding `execution.retry_count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

/// `foreach`: one call per element of an array, results in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Foreach {
    /// A reference to an array, like `t1.items` (same syntax as `$ref`).
    pub over: String,
    /// Required upper bound on the number of elements; a longer array fails the task
    /// instead of fanning out without limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<usize>,
}

impl Plan {
    /// Parses a plan from JSON, naming the JSON path of a type error
    /// (`tasks[2].depends_on: invalid type: string "t1", expected a sequence`).
    pub fn from_value(value: &Value) -> Result<Plan, String> {
        let plan: Result<Plan, _> = serde_path_to_error::deserialize(value);
        plan.map_err(|error| {
            let path = error.path().to_string();
            if path == "." || path.is_empty() {
                error.inner().to_string()
            } else {
                format!("{path}: {}", error.inner())
            }
        })
    }

    /// The task ids to report as the batch output: `output`, or when it is empty every
    /// task no other task depends on, in plan order.
    pub fn output_ids(&self) -> Vec<String> {
        if !self.output.is_empty() {
            return self.output.clone();
        }
        self.tasks
            .iter()
            .filter(|t| !self.tasks.iter().any(|o| o.depends_on.contains(&t.id)))
            .map(|t| t.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_with_defaults() {
        let plan = Plan::from_value(&json!({
            "tasks": [
                {"id": "a", "tool": "s__echo"},
                {"id": "b", "tool": "s__echo", "args": {"text": {"$ref": "a"}}, "depends_on": ["a"],
                 "foreach": {"over": "a.items", "max_items": 3}, "timeout_ms": 10, "retries": 1}
            ]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.goal, "");
        assert!(plan.tasks[0].args.is_empty());
        assert!(plan.tasks[0].depends_on.is_empty());
        assert_eq!(
            plan.tasks[1].foreach.as_ref().and_then(|f| f.max_items),
            Some(3)
        );
        assert_eq!(plan.output_ids(), ["b"]);
    }

    #[test]
    fn type_errors_name_the_path() {
        let err =
            Plan::from_value(&json!({"tasks": [{"id": "a", "tool": "x", "depends_on": "b"}]}))
                .err()
                .unwrap_or_default();
        assert!(err.starts_with("tasks[0].depends_on:"), "{err}");
        let err = Plan::from_value(&json!({"goal": "x"}))
            .err()
            .unwrap_or_default();
        assert!(err.contains("missing field `tasks`"), "{err}");
    }
}
