//! How a setting's text is read as a typed value: [`SettingValue`] for each type a setting
//! can have, and the duration syntax.

use std::time::Duration;

use super::secret::Secret;

/// How a value type is read from the text of a flag, variable or config entry.
pub trait SettingValue: Sized {
    /// Parses `raw`, or says in a few words what was expected.
    fn parse_setting(raw: &str) -> Result<Self, String>;
}

impl SettingValue for String {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        Ok(raw.to_owned())
    }
}

impl SettingValue for Secret {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        Ok(Secret::new(raw))
    }
}

impl SettingValue for bool {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        crate::repo::parse_git_bool(raw)
            .ok_or_else(|| "expected a boolean (true/false, yes/no, on/off, 1/0)".to_owned())
    }
}

impl SettingValue for u32 {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        raw.trim()
            .parse()
            .map_err(|_| "expected a whole number".to_owned())
    }
}

impl SettingValue for f64 {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        match raw.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err("expected a number".to_owned()),
        }
    }
}

impl SettingValue for Duration {
    fn parse_setting(raw: &str) -> Result<Self, String> {
        parse_duration(raw)
    }
}

/// Reads `30`, `30s`, `1.5s`, `500ms` or `2m`; a bare number is seconds, as in `timeout = 30`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (number, unit_seconds) = if let Some(n) = raw.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = raw.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = raw.strip_suffix('m') {
        (n, 60.0)
    } else {
        (raw, 1.0)
    };
    let expected = || "expected a duration such as 30, 30s, 500ms or 2m".to_owned();
    let number: f64 = number.trim().parse().map_err(|_| expected())?;
    if !number.is_finite() || number < 0.0 {
        return Err(expected());
    }
    Duration::try_from_secs_f64(number * unit_seconds).map_err(|_| expected())
}
