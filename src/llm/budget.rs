//! How many reply tokens to ask for.
//!
//! `max_tokens` is the configured reply budget, lowered when the prompt leaves less room in the
//! context window. It is never zero or negative (the system this replaces sent a negative value
//! once its prompts grew): a prompt that leaves too little room is an error before any request.
//! Prompt size is estimated, not tokenized (we do not know the server's tokenizer), on the
//! generous side so the estimate errs toward asking for less.

use super::LlmError;

/// Bytes per token in the estimate. Real tokenizers average about 4 bytes per token on English
/// and JSON; 3.5 over-estimates a little, which is the safe direction.
const BYTES_PER_TOKEN_TIMES_2: usize = 7;
/// Chat templates add role markers and separators around every message.
const TOKENS_PER_MESSAGE: u32 = 8;
/// Slack for the estimate being wrong and for the template's fixed prefix.
const SAFETY_MARGIN: u32 = 64;
/// A reply shorter than this cannot hold a useful decision.
const MIN_REPLY_TOKENS: u32 = 64;

/// The estimated prompt size in tokens of messages whose texts are `texts`.
pub fn estimate_prompt_tokens<'a>(texts: impl IntoIterator<Item = &'a str>) -> u32 {
    texts
        .into_iter()
        .map(|text| {
            let tokens = (text.len() * 2).div_ceil(BYTES_PER_TOKEN_TIMES_2);
            u32::try_from(tokens)
                .unwrap_or(u32::MAX)
                .saturating_add(TOKENS_PER_MESSAGE)
        })
        .fold(0u32, u32::saturating_add)
}

/// The `max_tokens` to send: `wanted`, or less if the prompt leaves less room, never below the
/// smaller of `wanted` and a useful minimum.
pub fn reply_tokens(prompt_tokens: u32, context_window: u32, wanted: u32) -> Result<u32, LlmError> {
    let wanted = wanted.max(1);
    let available = context_window
        .saturating_sub(prompt_tokens)
        .saturating_sub(SAFETY_MARGIN);
    let needed = wanted.min(MIN_REPLY_TOKENS);
    if available < needed {
        return Err(LlmError::PromptTooLarge {
            prompt_tokens,
            context_window,
            available,
            needed,
        });
    }
    Ok(wanted.min(available))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_grows_with_text_and_counts_message_overhead() {
        assert_eq!(estimate_prompt_tokens([""]), TOKENS_PER_MESSAGE);
        assert_eq!(estimate_prompt_tokens(["abcdefg"]), 2 + TOKENS_PER_MESSAGE);
        let long = "x".repeat(3500);
        assert_eq!(
            estimate_prompt_tokens([long.as_str(), ""]),
            1000 + 2 * TOKENS_PER_MESSAGE
        );
    }

    #[test]
    fn a_small_prompt_gets_the_whole_wanted_budget() {
        assert_eq!(reply_tokens(100, 8192, 1024).unwrap(), 1024);
    }

    #[test]
    fn a_large_prompt_lowers_the_budget_to_what_is_left() {
        assert_eq!(
            reply_tokens(7500, 8192, 1024).unwrap(),
            8192 - 7500 - SAFETY_MARGIN
        );
    }

    #[test]
    fn a_prompt_that_leaves_no_useful_room_is_an_error_not_a_negative_budget() {
        for prompt in [8100, 8192, 9000, u32::MAX] {
            let err = reply_tokens(prompt, 8192, 1024).unwrap_err();
            assert!(
                matches!(err, LlmError::PromptTooLarge { .. }),
                "{prompt}: {err}"
            );
        }
    }

    #[test]
    fn the_budget_is_never_zero() {
        assert!(reply_tokens(0, 0, 1024).is_err());
        assert_eq!(reply_tokens(0, 8192, 0).unwrap(), 1);
        for prompt in (0..9000).step_by(97) {
            if let Ok(n) = reply_tokens(prompt, 8192, 512) {
                assert!(n >= 1, "{prompt}");
            }
        }
    }
}
