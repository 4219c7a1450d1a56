//! The planner: turns a natural-language request plus the merged catalogue into a validated
//! plan with one LLM call, and at most one repair call.
//!
//! The prompt ([`prompt`]) carries the plan format, the reference syntax and the catalogue
//! (names, descriptions, parameters), trimmed to `llm.max_prompt_chars`. The plan is asked
//! for as a forced `submit_plan` tool call where the provider supports it, else with a
//! JSON-schema (or JSON-object) response format, else as fenced JSON in text: starting from
//! `llm.plan_output`, a mode the provider refuses (HTTP 400, 422, 500, 501) is replaced by
//! the next one, and remembered. When the answer does not parse or validate, the
//! validator's problems are sent back once. Never runs a tool.

pub mod prompt;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::catalog::{Catalog, CatalogTool};
use crate::config::PlanOutput;
use crate::llm::{
    ChatMessage, ChatRequest, ChatResponse, LlmError, LlmProvider, StructuredOutput, preview,
};

use super::plan::Plan;
use super::validate::{Problem, ValidatedPlan, ValidationContext, validate};
pub use prompt::{
    TYPED_SCHEMA_MAX_TOOLS, describe_tool, plan_schema, system_prompt, typed_plan_schema,
};
use prompt::{answer_tools, repair_message};

/// The structured-output name the plan is submitted under.
pub const SUBMIT_PLAN: &str = "submit_plan";

/// How the planner asks.
#[derive(Debug, Clone)]
pub struct PlannerSettings {
    /// `llm.plan_output`.
    pub output: PlanOutput,
    /// `llm.max_prompt_chars`.
    pub max_prompt_chars: usize,
}

/// The result of planning.
#[derive(Debug)]
pub struct Planned {
    pub plan: ValidatedPlan,
    /// LLM requests made (1; 2 after a repair; more when a plan output mode was refused).
    pub llm_calls: u32,
    /// The plan output mode that produced the plan.
    pub output: PlanOutput,
    /// Tools the prompt described (after trimming).
    pub tools_in_prompt: usize,
}

/// Why no valid plan came out.
#[derive(Debug, thiserror::Error)]
pub enum PlanningError {
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error("the LLM's plan is still invalid after one repair: {}", summary(.problems))]
    Invalid {
        problems: Vec<Problem>,
        /// The last answer, shortened.
        answer: String,
    },
}

fn summary(problems: &[Problem]) -> String {
    let shown: Vec<String> = problems.iter().take(5).map(ToString::to_string).collect();
    let more = problems.len().saturating_sub(5);
    if more > 0 {
        format!("{}; and {more} more", shown.join("; "))
    } else {
        shown.join("; ")
    }
}

/// Whether `error` means the provider refused the way the plan was asked for (a tool call
/// or response format it does not support), rather than being down or refusing the key.
fn refused_mode(error: &LlmError) -> bool {
    matches!(error, LlmError::Http { status, .. } if matches!(status, 400 | 422 | 500 | 501))
}

/// Turns requests into plans with one LLM.
pub struct Planner {
    llm: Arc<dyn LlmProvider>,
    settings: PlannerSettings,
    /// The mode to ask with: `llm.plan_output` at first, then the first one the provider
    /// accepted after refusing others (so later plans do not pay for the refusals again).
    mode: Mutex<PlanOutput>,
}

impl Planner {
    pub fn new(llm: Arc<dyn LlmProvider>, settings: PlannerSettings) -> Planner {
        let first = if llm.plan_outputs().contains(&settings.output) {
            settings.output
        } else {
            PlanOutput::Tool
        };
        Planner {
            llm,
            mode: Mutex::new(first),
            settings,
        }
    }

    /// The mode the next request uses.
    pub fn mode(&self) -> PlanOutput {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next mode after `mode` that the provider supports.
    fn next_mode(&self, mode: PlanOutput) -> Option<PlanOutput> {
        let supported = self.llm.plan_outputs();
        PlanOutput::ALL
            .iter()
            .skip_while(|m| **m != mode)
            .skip(1)
            .find(|m| supported.contains(m))
            .copied()
    }

    /// One completion asking for a plan; a refused mode is replaced by the next one.
    /// Returns the answer, the mode that produced it and the number of requests made.
    async fn ask(
        &self,
        system: &str,
        messages: &[ChatMessage],
        schema: &serde_json::Value,
    ) -> Result<(ChatResponse, PlanOutput, u32), LlmError> {
        let mut requests = 0;
        let mut mode = self.mode();
        loop {
            requests += 1;
            let answer = self
                .llm
                .complete(ChatRequest {
                    system: system.to_owned(),
                    messages: messages.to_vec(),
                    structured: Some(StructuredOutput {
                        name: SUBMIT_PLAN.into(),
                        description:
                            "Submit the plan: tasks with dependencies, run in parallel by mcp-orch."
                                .into(),
                        schema: schema.clone(),
                        mode,
                    }),
                    json_mode: false,
                    max_tokens: None,
                })
                .await;
            match answer {
                Ok(response) => {
                    // Remembered only once it worked: refusals during an outage (5xx) must
                    // not leave later plans on a weaker mode.
                    *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
                    return Ok((response, mode, requests));
                }
                Err(error) if refused_mode(&error) => {
                    let Some(next) = self.next_mode(mode) else {
                        return Err(error);
                    };
                    tracing::warn!(
                        llm = %self.llm.describe(),
                        refused = mode.as_str(),
                        next = next.as_str(),
                        %error,
                        "the LLM refused this way of asking for a plan; trying the next"
                    );
                    mode = next;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Plans `request` against `catalog` (already filtered to what the caller may call).
    pub async fn plan(
        &self,
        request: &str,
        catalog: &Catalog,
        context: &ValidationContext<'_>,
    ) -> Result<Planned, PlanningError> {
        let allowed: Vec<&CatalogTool> = catalog
            .tools()
            .iter()
            .filter(|t| context.allow.is_none_or(|allow| allow(t)))
            .collect();
        let (system, tools_in_prompt) =
            system_prompt(request, &allowed, context, self.settings.max_prompt_chars);
        tracing::debug!(
            prompt_chars = system.len(),
            tools = tools_in_prompt,
            llm = %self.llm.describe(),
            "planning"
        );
        let schema = if allowed.len() <= TYPED_SCHEMA_MAX_TOOLS {
            typed_plan_schema(&allowed, context.llm_available)
        } else {
            plan_schema()
        };
        let mut messages = vec![ChatMessage::user(request)];
        let mut llm_calls = 0;
        for round in 1..=2u32 {
            let started = Instant::now();
            let (response, output, requests) = self.ask(&system, &messages, &schema).await?;
            llm_calls += requests;
            let answer = response
                .structured
                .clone()
                .or_else(|| crate::llm::extract_json(&response.text));
            let shown = match &answer {
                Some(value) => value.to_string(),
                None => response.text.clone(),
            };
            let problems = match answer {
                None => vec![Problem {
                    task: None,
                    code: "NO_PLAN",
                    message: format!(
                        "the answer contains no JSON plan: {}",
                        preview(&response.text)
                    ),
                }],
                Some(value) => match Plan::from_value(&value) {
                    Err(error) => vec![Problem {
                        task: None,
                        code: "INVALID_PLAN_JSON",
                        message: error,
                    }],
                    Ok(plan) => match validate(plan, context) {
                        Ok(plan) => {
                            tracing::info!(
                                llm_calls,
                                plan_output = output.as_str(),
                                elapsed_ms = started.elapsed().as_millis() as u64,
                                tasks = plan.plan.tasks.len(),
                                "plan ready"
                            );
                            return Ok(Planned {
                                plan,
                                llm_calls,
                                output,
                                tools_in_prompt,
                            });
                        }
                        Err(problems) => problems,
                    },
                },
            };
            tracing::info!(round, problems = problems.len(), "LLM plan rejected");
            if round == 2 {
                return Err(PlanningError::Invalid {
                    problems,
                    answer: preview(&shown),
                });
            }
            messages.push(ChatMessage::assistant(shown));
            messages.push(ChatMessage::user(repair_message(
                &problems,
                &answer_tools(&messages),
                catalog,
            )));
        }
        Err(PlanningError::Invalid {
            problems: Vec::new(),
            answer: String::new(),
        })
    }
}
