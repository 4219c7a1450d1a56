//! Validation of a plan before anything runs, against the merged catalogue and the limits.
//!
//! Reports every problem at once, each with the task id it concerns: duplicate or malformed
//! ids, unknown tools, tools the caller may not call, references to unknown or undeclared
//! tasks, cycles, arguments that violate the tool's input schema, unbounded or too large
//! fan-out, too many tasks. A valid plan comes out as a [`ValidatedPlan`]: the task graph
//! the executor runs (dependency indices, owning server, retry safety, critical-path
//! priority). Nothing here calls a tool or an LLM.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::catalog::{Catalog, CatalogTool};

use super::plan::{FOREACH_ITEM, LLM_GENERATE, Plan, TaskSpec};
use super::refs::{self, RefPath, is_word_char};
use super::schema;

/// Longest task id.
pub const MAX_ID_LEN: usize = 64;
/// Most retries a task may ask for.
pub const MAX_RETRIES: u32 = 10;

/// One thing wrong with a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The task concerned (absent for plan-wide problems).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Stable machine-readable code (`UNKNOWN_TOOL`, `CYCLE`, ...).
    pub code: &'static str,
    /// What is wrong, naming the tool, reference or argument.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.task {
            Some(task) => write!(f, "task `{task}`: {} ({})", self.message, self.code),
            None => write!(f, "{} ({})", self.message, self.code),
        }
    }
}

/// Who may call what: `true` when the caller may call that catalogue tool. Supplied by the
/// security layer (per API key); absent means every tool is allowed.
pub type ToolPermission = Arc<dyn Fn(&CatalogTool) -> bool + Send + Sync>;

/// Bounds a plan must respect.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most tasks in one plan.
    pub max_tasks: usize,
    /// Largest `foreach.max_items`.
    pub max_fanout: usize,
}

/// What a plan is validated against.
pub struct ValidationContext<'a> {
    /// The merged catalogue.
    pub catalog: &'a Catalog,
    /// Plan bounds.
    pub limits: Limits,
    /// Whether `llm.generate` can run (an LLM provider is configured).
    pub llm_available: bool,
    /// The caller's permissions, when the security layer supplies them.
    pub allow: Option<&'a ToolPermission>,
}

/// One task of a validated plan, as the executor needs it.
#[derive(Debug, Clone)]
pub struct TaskNode {
    /// Indices (into the plan's tasks) of the tasks this one waits for.
    pub deps: Vec<usize>,
    /// Indices of the tasks that wait for this one.
    pub dependents: Vec<usize>,
    /// The server the tool belongs to (none for `llm.generate`), for per-server bounds.
    pub server: Option<Arc<str>>,
    /// The tool is annotated read-only or idempotent, so a transport failure may be retried.
    pub retry_safe: bool,
    /// Length (in tasks) of the longest chain from this task to the end of the plan; ready
    /// tasks with longer chains start first.
    pub priority: usize,
    /// The tool's input schema, for checking resolved arguments before the call.
    pub input_schema: Option<Arc<serde_json::Value>>,
}

/// A plan that passed validation, with its task graph.
#[derive(Debug, Clone)]
pub struct ValidatedPlan {
    /// The plan as submitted.
    pub plan: Plan,
    /// One node per task, same order as `plan.tasks`.
    pub nodes: Vec<TaskNode>,
}

/// Validates `plan`; every problem is reported, not just the first.
pub fn validate(
    plan: Plan,
    context: &ValidationContext<'_>,
) -> Result<ValidatedPlan, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut report = |task: Option<&str>, code: &'static str, message: String| {
        problems.push(Problem {
            task: task.map(str::to_owned),
            code,
            message,
        });
    };
    if plan.tasks.is_empty() {
        report(None, "EMPTY_PLAN", "the plan has no tasks".into());
    }
    if plan.tasks.len() > context.limits.max_tasks {
        report(
            None,
            "TOO_MANY_TASKS",
            format!(
                "the plan has {} tasks; at most {} are allowed (execution.max_tasks)",
                plan.tasks.len(),
                context.limits.max_tasks
            ),
        );
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, task) in plan.tasks.iter().enumerate() {
        let id = task.id.as_str();
        if id.is_empty() || id.len() > MAX_ID_LEN || !id.chars().all(is_word_char) {
            report(
                Some(id),
                "INVALID_ID",
                format!("task id must be 1 to {MAX_ID_LEN} letters, digits, `_` or `-`"),
            );
        } else if id == FOREACH_ITEM {
            report(
                Some(id),
                "INVALID_ID",
                format!("`{FOREACH_ITEM}` is reserved for the current foreach element"),
            );
        }
        if index.insert(id, i).is_some() {
            report(
                Some(id),
                "DUPLICATE_ID",
                format!("task id `{id}` is used more than once"),
            );
        }
    }

    let mut nodes = Vec::with_capacity(plan.tasks.len());
    for task in &plan.tasks {
        let (node, task_problems) = check_task(task, &index, context);
        for (code, message) in task_problems {
            report(Some(&task.id), code, message);
        }
        nodes.push(node);
    }
    for id in &plan.output {
        if !index.contains_key(id.as_str()) {
            report(
                None,
                "UNKNOWN_OUTPUT",
                format!("`output` names `{id}`, which is not a task of the plan"),
            );
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        for &dep in &node.deps {
            if dep == i {
                report(
                    Some(&plan.tasks[i].id),
                    "CYCLE",
                    "the task depends on itself".into(),
                );
            }
        }
    }
    if let Some(cycle) = find_cycle(&nodes) {
        let ids: Vec<&str> = cycle.iter().map(|&i| plan.tasks[i].id.as_str()).collect();
        report(
            Some(ids[0]),
            "CYCLE",
            format!("dependency cycle: {} -> {}", ids.join(" -> "), ids[0]),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    for i in 0..nodes.len() {
        for dep in nodes[i].deps.clone() {
            nodes[dep].dependents.push(i);
        }
    }
    assign_priorities(&mut nodes);
    Ok(ValidatedPlan { plan, nodes })
}

/// Checks one task in isolation (given the id index); returns its node (edges only to
/// known tasks) and its problems.
fn check_task(
    task: &TaskSpec,
    index: &HashMap<&str, usize>,
    context: &ValidationContext<'_>,
) -> (TaskNode, Vec<(&'static str, String)>) {
    let mut problems = Vec::new();
    let mut node = TaskNode {
        deps: Vec::new(),
        dependents: Vec::new(),
        server: None,
        retry_safe: false,
        priority: 1,
        input_schema: None,
    };
    let declared: HashSet<&str> = task.depends_on.iter().map(String::as_str).collect();
    for dep in &task.depends_on {
        match index.get(dep.as_str()) {
            Some(&i) if !node.deps.contains(&i) => node.deps.push(i),
            Some(_) => {}
            None => problems.push((
                "UNKNOWN_TASK",
                format!("`depends_on` names `{dep}`, which is not a task of the plan"),
            )),
        }
    }

    let check_root = |path: &RefPath, location: &str, problems: &mut Vec<_>| {
        if path.root == FOREACH_ITEM {
            if task.foreach.is_none() {
                problems.push((
                    "INVALID_REFERENCE",
                    format!("{location}: `{FOREACH_ITEM}` is only defined in a `foreach` task"),
                ));
            }
        } else if !index.contains_key(path.root.as_str()) {
            problems.push((
                "UNKNOWN_TASK",
                format!(
                    "{location} refers to `{}`, which is not a task of the plan",
                    path.root
                ),
            ));
        } else if !declared.contains(path.root.as_str()) {
            problems.push((
                "UNDECLARED_DEPENDENCY",
                format!(
                    "{location} refers to `{}`, which is not listed in `depends_on`",
                    path.root
                ),
            ));
        }
    };
    for found in refs::collect(&task.args) {
        match &found.path {
            Ok(path) => check_root(path, &found.location, &mut problems),
            Err(error) => {
                problems.push(("INVALID_REFERENCE", format!("{}: {error}", found.location)))
            }
        }
    }
    if let Some(foreach) = &task.foreach {
        match RefPath::parse(&foreach.over) {
            Ok(path) if path.root == FOREACH_ITEM => problems.push((
                "INVALID_REFERENCE",
                "foreach.over must refer to a task's output, not to `item`".into(),
            )),
            Ok(path) => check_root(&path, "foreach.over", &mut problems),
            Err(error) => problems.push(("INVALID_REFERENCE", format!("foreach.over: {error}"))),
        }
        match foreach.max_items {
            None => problems.push((
                "UNBOUNDED_FANOUT",
                "foreach needs `max_items`, an upper bound on the number of elements".into(),
            )),
            Some(n) if n > context.limits.max_fanout => problems.push((
                "FANOUT_TOO_LARGE",
                format!(
                    "foreach.max_items is {n}; at most {} is allowed (execution.max_fanout)",
                    context.limits.max_fanout
                ),
            )),
            Some(_) => {}
        }
    }
    if task.timeout_ms == Some(0) {
        problems.push(("INVALID_TIMEOUT", "timeout_ms must be more than 0".into()));
    }
    if task.retries.is_some_and(|r| r > MAX_RETRIES) {
        problems.push((
            "TOO_MANY_RETRIES",
            format!("retries may be at most {MAX_RETRIES}"),
        ));
    }

    if task.tool == LLM_GENERATE {
        node.retry_safe = true;
        if !context.llm_available {
            problems.push((
                "LLM_NOT_CONFIGURED",
                format!("`{LLM_GENERATE}` needs an LLM: set `llm.provider` in config.yaml"),
            ));
        }
        let schema = llm_generate_schema();
        for message in schema::check(&schema, &task.args, true) {
            problems.push(("INVALID_ARGUMENTS", message));
        }
        node.input_schema = Some(Arc::new(schema));
        return (node, problems);
    }
    let Some(tool) = context.catalog.get(&task.tool) else {
        problems.push((
            "UNKNOWN_TOOL",
            unknown_tool_message(&task.tool, context.catalog),
        ));
        return (node, problems);
    };
    if let Some(allow) = context.allow
        && !allow(tool)
    {
        problems.push((
            "TOOL_NOT_ALLOWED",
            format!("the caller's key may not call `{}`", task.tool),
        ));
    }
    node.server = Some(tool.server.clone());
    node.retry_safe = tool
        .tool
        .annotations
        .as_ref()
        .is_some_and(|a| a.read_only_hint == Some(true) || a.idempotent_hint == Some(true));
    let schema = serde_json::Value::Object((*tool.tool.input_schema).clone());
    for message in schema::check(&schema, &task.args, true) {
        problems.push(("INVALID_ARGUMENTS", format!("`{}`: {message}", task.tool)));
    }
    node.input_schema = Some(Arc::new(schema));
    (node, problems)
}

/// The input schema of the built-in `llm.generate`.
pub fn llm_generate_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "minLength": 1, "description": "What to write, analyse or summarise; interpolate inputs with ${task.path}."},
            "system": {"type": "string", "description": "Optional system instruction."},
            "json": {"type": "boolean", "description": "Answer with a JSON value instead of text."},
            "max_tokens": {"type": "integer", "minimum": 1, "maximum": 32768}
        },
        "required": ["prompt"],
        "additionalProperties": false
    })
}

fn unknown_tool_message(name: &str, catalog: &Catalog) -> String {
    // Suggest tools with a close spelling, or the same tool name under another prefix.
    let tail = name.rsplit(['_', '.']).next().unwrap_or(name);
    let mut close: Vec<(usize, &str)> = catalog
        .tools()
        .iter()
        .map(|t| &*t.exposed)
        .filter_map(|exposed| {
            let distance = edit_distance(name, exposed);
            let same_tail = !tail.is_empty() && exposed.ends_with(tail);
            (distance <= 2.max(name.len() / 5) || same_tail).then_some((distance, exposed))
        })
        .collect();
    close.sort_unstable();
    let names: Vec<&str> = close.into_iter().take(5).map(|(_, n)| n).collect();
    if names.is_empty() {
        format!("no tool named `{name}` in the catalogue (GET /tools lists them)")
    } else {
        format!(
            "no tool named `{name}` in the catalogue; did you mean {}?",
            names.join(", ")
        )
    }
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            current[j + 1] = (previous[j] + cost)
                .min(previous[j + 1] + 1)
                .min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// A cycle among the tasks (indices, in order), if there is one.
fn find_cycle(nodes: &[TaskNode]) -> Option<Vec<usize>> {
    // Iterative DFS with colours: 0 = new, 1 = on the stack, 2 = done.
    let mut colour = vec![0u8; nodes.len()];
    for start in 0..nodes.len() {
        if colour[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        colour[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = nodes[node].deps.get(*next) {
                *next += 1;
                if dep == node {
                    continue; // self-dependency, reported on its own
                }
                match colour[dep] {
                    0 => {
                        colour[dep] = 1;
                        stack.push((dep, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                        let mut cycle: Vec<usize> = stack[from..].iter().map(|&(n, _)| n).collect();
                        cycle.reverse();
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                colour[node] = 2;
                stack.pop();
            }
        }
    }
    None
}

/// Sets each node's priority to the length of the longest chain of dependents below it.
fn assign_priorities(nodes: &mut [TaskNode]) {
    // Kahn order over dependents, then a reverse sweep.
    let mut remaining: Vec<usize> = nodes.iter().map(|n| n.deps.len()).collect();
    let mut order: Vec<usize> = (0..nodes.len()).filter(|&i| remaining[i] == 0).collect();
    let mut head = 0;
    while head < order.len() {
        let node = order[head];
        head += 1;
        for &dependent in &nodes[node].dependents {
            remaining[dependent] -= 1;
            if remaining[dependent] == 0 {
                order.push(dependent);
            }
        }
    }
    for &node in order.iter().rev() {
        let below = nodes[node]
            .dependents
            .iter()
            .map(|&d| nodes[d].priority)
            .max()
            .unwrap_or(0);
        nodes[node].priority = below + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ServerTools;
    use rmcp::model::Tool;
    use serde_json::{Value, json};

    pub(crate) fn catalog() -> Catalog {
        let tool = |name: &str, schema: Value, read_only: bool| -> Tool {
            let mut value = json!({"name": name, "description": name, "inputSchema": schema});
            if read_only {
                value["annotations"] = json!({"readOnlyHint": true});
            }
            serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
        };
        let echo = json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]});
        Catalog::build(
            vec![ServerTools::tools_only(
                "s".into(),
                "s",
                Arc::new(vec![
                    tool("echo", echo.clone(), false),
                    tool("get", echo, true),
                    tool(
                        "sleep",
                        json!({"type": "object", "properties": {"ms": {"type": "integer"}}, "required": ["ms"]}),
                        false,
                    ),
                ]),
            )],
            "__",
        )
    }

    fn run(plan: Value, allow: Option<&ToolPermission>) -> Result<ValidatedPlan, Vec<Problem>> {
        let catalog = catalog();
        let plan = Plan::from_value(&plan).unwrap_or_else(|e| panic!("{e}"));
        validate(
            plan,
            &ValidationContext {
                catalog: &catalog,
                limits: Limits {
                    max_tasks: 5,
                    max_fanout: 10,
                },
                llm_available: false,
                allow,
            },
        )
    }

    fn codes(result: Result<ValidatedPlan, Vec<Problem>>) -> Vec<(Option<String>, &'static str)> {
        match result {
            Ok(_) => Vec::new(),
            Err(problems) => problems.into_iter().map(|p| (p.task, p.code)).collect(),
        }
    }

    #[test]
    fn a_diamond_is_valid_with_priorities_and_edges() {
        let plan = run(
            json!({"tasks": [
                {"id": "a", "tool": "s__get", "args": {"text": "x"}},
                {"id": "b", "tool": "s__echo", "args": {"text": "${a}"}, "depends_on": ["a"]},
                {"id": "c", "tool": "s__echo", "args": {"text": {"$ref": "a"}}, "depends_on": ["a"]},
                {"id": "d", "tool": "s__echo", "args": {"text": "${b} ${c}"}, "depends_on": ["b", "c"]},
                {"id": "e", "tool": "s__sleep", "args": {"ms": 1}}
            ]}),
            None,
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        let priorities: Vec<usize> = plan.nodes.iter().map(|n| n.priority).collect();
        assert_eq!(priorities, [3, 2, 2, 1, 1]);
        assert_eq!(plan.nodes[0].dependents, [1, 2]);
        assert_eq!(plan.nodes[3].deps, [1, 2]);
        assert!(plan.nodes[0].retry_safe && !plan.nodes[1].retry_safe);
        assert_eq!(plan.nodes[0].server.as_deref(), Some("s"));
    }

    #[test]
    fn every_problem_is_reported_with_its_task() {
        let result = run(
            json!({"tasks": [
                {"id": "a", "tool": "s__nope"},
                {"id": "a", "tool": "s__echo", "args": {"text": 1}},
                {"id": "b c", "tool": "s__echo", "args": {"text": "${zz}"}, "depends_on": ["ghost"]},
                {"id": "d", "tool": "s__echo", "args": {"text": {"$ref": "a.x"}}},
                {"id": "e", "tool": "llm.generate", "args": {"prompt": "x"}, "foreach": {"over": "a"}},
                {"id": "f", "tool": "s__echo", "args": {"text": "${item}"}}
            ], "output": ["q"]}),
            None,
        );
        assert_eq!(
            codes(result),
            [
                (None, "TOO_MANY_TASKS"),
                (Some("a".into()), "DUPLICATE_ID"),
                (Some("b c".into()), "INVALID_ID"),
                (Some("a".into()), "UNKNOWN_TOOL"),
                (Some("a".into()), "INVALID_ARGUMENTS"),
                (Some("b c".into()), "UNKNOWN_TASK"),
                (Some("b c".into()), "UNKNOWN_TASK"),
                (Some("d".into()), "UNDECLARED_DEPENDENCY"),
                (Some("e".into()), "UNDECLARED_DEPENDENCY"),
                (Some("e".into()), "UNBOUNDED_FANOUT"),
                (Some("e".into()), "LLM_NOT_CONFIGURED"),
                (Some("f".into()), "INVALID_REFERENCE"),
                (None, "UNKNOWN_OUTPUT"),
            ]
        );
    }

    #[test]
    fn unknown_tools_get_suggestions() {
        let catalog = catalog();
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let message = unknown_tool_message("s__ech0", &catalog);
        assert!(message.ends_with("did you mean s__echo?"), "{message}");
        let message = unknown_tool_message("other__sleep", &catalog);
        assert!(message.contains("did you mean s__sleep?"), "{message}");
        let message = unknown_tool_message("zzz", &catalog);
        assert!(message.contains("GET /tools"), "{message}");
    }

    #[test]
    fn cycles_fanout_limits_and_permissions() {
        let result = run(
            json!({"tasks": [
                {"id": "a", "tool": "s__echo", "args": {"text": "${c}"}, "depends_on": ["c"]},
                {"id": "b", "tool": "s__echo", "args": {"text": "${a}"}, "depends_on": ["a"]},
                {"id": "c", "tool": "s__echo", "args": {"text": "${b}"}, "depends_on": ["b"]},
                {"id": "d", "tool": "s__get", "args": {"text": {"$ref": "item"}}, "depends_on": ["d"],
                 "foreach": {"over": "d.list", "max_items": 11}}
            ]}),
            Some(&(Arc::new(|t: &CatalogTool| &*t.original != "get") as ToolPermission)),
        );
        let problems = result.err().unwrap_or_default();
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            shown.iter().any(|p| p.contains("FANOUT_TOO_LARGE")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|p| p.starts_with("task `d`: the caller's key may not call `s__get`")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|p| p == "task `d`: the task depends on itself (CYCLE)"),
            "{shown:?}"
        );
        let cycle = shown
            .iter()
            .find(|p| p.contains("dependency cycle: "))
            .cloned()
            .unwrap_or_default();
        for id in ["a ->", "b ->", "c ->"] {
            assert!(cycle.contains(id), "{shown:?}");
        }
        assert!(!cycle.contains("d ->"), "{shown:?}");
    }
}
