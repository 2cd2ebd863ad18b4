//! Every key. Each is documented in `docs/config.md` (a test checks that it is).

use super::Key;

/// Whether appends start git's housekeeping (`git gc --auto`).
pub const STORE_AUTO_GC: Key = Key {
    git: "spectra.store.autoGc",
    env: &["SPECTRA_STORE_AUTO_GC"],
    default: "true",
    secret: false,
};
/// The project's test command for the `run-tests` built-in playbook.
pub const TEST_COMMAND: Key = Key {
    git: "spectra.test.command",
    env: &["SPECTRA_TEST_COMMAND"],
    default: "",
    secret: false,
};
/// `false` turns the post-commit hook off.
pub const HOOKS_ENABLED: Key = Key {
    git: "spectra.hooks.enabled",
    env: &["SPECTRA_HOOKS"],
    default: "true",
    secret: false,
};
/// Activities to start when a commit changes a specification.
pub const HOOKS_ON_SPEC_CHANGE: Key = Key {
    git: "spectra.hooks.onSpecChange",
    env: &["SPECTRA_HOOKS_ON_SPEC_CHANGE"],
    default: "",
    secret: false,
};
/// The most playbooks a decision is offered; beyond it they are ranked first (issue 25).
pub const PLAYBOOKS_OFFERED: Key = Key {
    git: "spectra.playbooks.offered",
    env: &["SPECTRA_PLAYBOOKS_OFFERED"],
    default: "5",
    secret: false,
};
/// `true` has a model re-rank a longer lexical shortlist down to the playbooks offered.
pub const PLAYBOOKS_RERANK: Key = Key {
    git: "spectra.playbooks.rerank",
    env: &["SPECTRA_PLAYBOOKS_RERANK"],
    default: "false",
    secret: false,
};

/// Colour of human output: `auto`, `always` or `never` (`--color` overrides both).
pub const COLOR: Key = Key {
    git: "spectra.color",
    env: &["SPECTRA_COLOR"],
    default: "auto",
    secret: false,
};

/// The keys outside the LLM group, in the order the docs show them.
pub const OTHERS: &[&Key] = &[
    &STORE_AUTO_GC,
    &TEST_COMMAND,
    &HOOKS_ENABLED,
    &HOOKS_ON_SPEC_CHANGE,
    &PLAYBOOKS_OFFERED,
    &PLAYBOOKS_RERANK,
    &COLOR,
];

/// Every key there is: the LLM keys, then the others.
pub fn all() -> impl Iterator<Item = &'static Key> {
    LLM.iter().chain(OTHERS).copied()
}

/// The chat-completions endpoint; a base URL ending in `/v1`, or a bare `http://host:port`,
/// is completed.
pub const LLM_URL: Key = Key {
    git: "spectra.llm.url",
    env: &["SPECTRA_LLM_URL", "ORCHESTRATOR_LLM_URL"],
    default: "http://localhost:8001/v1/chat/completions",
    secret: false,
};
/// The API key, sent as `Authorization: Bearer ...`; secret, so never printed, logged or recorded.
pub const LLM_API_KEY: Key = Key {
    git: "spectra.llm.apiKey",
    env: &["SPECTRA_LLM_API_KEY", "ORCHESTRATOR_LLM_API_KEY"],
    default: "token-irrelevant",
    secret: true,
};
/// The `model` of every request.
pub const LLM_MODEL: Key = Key {
    git: "spectra.llm.model",
    env: &["SPECTRA_LLM_MODEL", "ORCHESTRATOR_LLM_MODEL"],
    default: "mistralai/Mistral-7B-Instruct-v0.3",
    secret: false,
};
/// One HTTP attempt, from sending to the last byte of the reply.
pub const LLM_TIMEOUT: Key = Key {
    git: "spectra.llm.timeout",
    env: &["SPECTRA_LLM_TIMEOUT"],
    default: "120s",
    secret: false,
};
/// Opening a connection.
pub const LLM_CONNECT_TIMEOUT: Key = Key {
    git: "spectra.llm.connectTimeout",
    env: &["SPECTRA_LLM_CONNECT_TIMEOUT"],
    default: "10s",
    secret: false,
};
/// One decision: all attempts, waits and repair turns.
pub const LLM_TOTAL_TIMEOUT: Key = Key {
    git: "spectra.llm.totalTimeout",
    env: &["SPECTRA_LLM_TOTAL_TIMEOUT"],
    default: "600s",
    secret: false,
};
/// Streamed replies: silence between tokens, not the whole reply, ends an attempt.
pub const LLM_STREAM: Key = Key {
    git: "spectra.llm.stream",
    env: &["SPECTRA_LLM_STREAM"],
    default: "true",
    secret: false,
};
/// While a reply is streamed: the longest wait for the next token.
pub const LLM_SILENCE_TIMEOUT: Key = Key {
    git: "spectra.llm.silenceTimeout",
    env: &["SPECTRA_LLM_SILENCE_TIMEOUT"],
    default: "60s",
    secret: false,
};
/// HTTP attempts per request (at least 1).
pub const LLM_MAX_ATTEMPTS: Key = Key {
    git: "spectra.llm.maxAttempts",
    env: &["SPECTRA_LLM_MAX_ATTEMPTS"],
    default: "5",
    secret: false,
};
/// The first backoff step; it doubles per attempt, with full jitter.
pub const LLM_BACKOFF_BASE: Key = Key {
    git: "spectra.llm.backoffBase",
    env: &["SPECTRA_LLM_BACKOFF_BASE"],
    default: "500ms",
    secret: false,
};
/// The cap on any single wait; a longer `Retry-After` ends the retries.
pub const LLM_MAX_DELAY: Key = Key {
    git: "spectra.llm.maxDelay",
    env: &["SPECTRA_LLM_MAX_DELAY"],
    default: "60s",
    secret: false,
};
/// The model's context window in tokens, prompt and reply together.
pub const LLM_CONTEXT_WINDOW: Key = Key {
    git: "spectra.llm.contextWindow",
    env: &["SPECTRA_LLM_CONTEXT_WINDOW"],
    default: "8192",
    secret: false,
};
/// The most reply tokens to ask for; fewer when the prompt leaves less room.
pub const LLM_MAX_TOKENS: Key = Key {
    git: "spectra.llm.maxTokens",
    env: &["SPECTRA_LLM_MAX_TOKENS"],
    default: "1024",
    secret: false,
};
/// The sampling temperature.
pub const LLM_TEMPERATURE: Key = Key {
    git: "spectra.llm.temperature",
    env: &["SPECTRA_LLM_TEMPERATURE"],
    default: "0.3",
    secret: false,
};

/// Every LLM key, in the order `doctor` and the docs show them.
pub const LLM: &[&Key] = &[
    &LLM_URL,
    &LLM_API_KEY,
    &LLM_MODEL,
    &LLM_TIMEOUT,
    &LLM_CONNECT_TIMEOUT,
    &LLM_TOTAL_TIMEOUT,
    &LLM_STREAM,
    &LLM_SILENCE_TIMEOUT,
    &LLM_MAX_ATTEMPTS,
    &LLM_BACKOFF_BASE,
    &LLM_MAX_DELAY,
    &LLM_CONTEXT_WINDOW,
    &LLM_MAX_TOKENS,
    &LLM_TEMPERATURE,
];
