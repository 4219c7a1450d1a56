//! Prompts: our `greeting` and the conformance suite's `test_*` prompts
//! (names, arguments and texts as the suite's reference server has them).

use rmcp::{
    handler::server::wrapper::Parameters,
    model::{ContentBlock, PromptMessage, ResourceContents, Role},
    prompt, prompt_router,
};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::{conformance::TEST_IMAGE_PNG_BASE64, server::Fixture};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GreetingArgs {
    /// Who to greet.
    pub name: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TwoArgs {
    /// First test argument
    pub arg1: String,
    /// Second test argument
    pub arg2: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EmbedArgs {
    /// URI of the resource to embed
    #[serde(rename = "resourceUri")]
    pub resource_uri: String,
}

#[prompt_router(vis = "pub(crate)")]
impl Fixture {
    /// One user message: `Hello, <name>!`.
    #[prompt(name = "greeting")]
    async fn greeting(&self, Parameters(args): Parameters<GreetingArgs>) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(
            Role::User,
            format!("Hello, {}!", args.name),
        )]
    }

    /// A simple prompt without arguments
    #[prompt(name = "test_simple_prompt")]
    async fn test_simple_prompt(&self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(
            Role::User,
            "This is a simple prompt for testing.",
        )]
    }

    /// A prompt with required arguments
    #[prompt(name = "test_prompt_with_arguments")]
    async fn test_prompt_with_arguments(
        &self,
        Parameters(args): Parameters<TwoArgs>,
    ) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(
            Role::User,
            format!(
                "Prompt with arguments: arg1='{}', arg2='{}'",
                args.arg1, args.arg2
            ),
        )]
    }

    /// A prompt that includes an embedded resource
    #[prompt(name = "test_prompt_with_embedded_resource")]
    async fn test_prompt_with_embedded_resource(
        &self,
        Parameters(args): Parameters<EmbedArgs>,
    ) -> Vec<PromptMessage> {
        let resource =
            ResourceContents::text("Embedded resource content for testing.", args.resource_uri);
        vec![
            PromptMessage::new(Role::User, ContentBlock::resource(resource)),
            PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
        ]
    }

    /// A prompt that includes image content
    #[prompt(name = "test_prompt_with_image")]
    async fn test_prompt_with_image(&self) -> Vec<PromptMessage> {
        vec![
            PromptMessage::new(
                Role::User,
                ContentBlock::image(TEST_IMAGE_PNG_BASE64, "image/png"),
            ),
            PromptMessage::new_text(Role::User, "Please analyze the image above."),
        ]
    }
}
