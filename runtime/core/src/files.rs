//! The project's typed JSON files: each is one Rust type ([`Versioned`]) that names its format and
//! version. Reading checks them before the fields: a file from a newer cold is refused as such
//! (not as "corrupt"), another kind of file is named, and every field is typed, so a renamed or
//! missing field is an error rather than a silent default.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::atomic;
use crate::error::{Error, Result};

/// A typed, versioned JSON file.
pub trait Versioned: Serialize + DeserializeOwned {
    /// What the file is, for messages ("training config").
    const WHAT: &'static str;
    /// The `format` string the file carries, when it carries one.
    const FORMAT: Option<&'static str>;
    /// The field that holds the version.
    const VERSION_FIELD: &'static str = "version";
    /// The newest version this build reads, and the one it writes.
    const VERSION: u32;
    /// The oldest version this build reads.
    const OLDEST: u32 = 1;
    /// The version of a file without the field (written before the field existed), if any.
    const UNVERSIONED: Option<u32> = None;
    /// What the user can do about a file this build cannot read ("export the bundle again").
    const REMEDY: &'static str;

    /// Checks on the JSON before it is deserialised, whose message is clearer than serde's
    /// (a degradation kind this build does not know).
    fn precheck(_value: &serde_json::Value) -> std::result::Result<(), String> {
        Ok(())
    }
}

/// Reads `T` from JSON text; the error is the reason alone (the caller names the file).
pub fn parse<T: Versioned>(text: &str) -> std::result::Result<T, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("not valid JSON ({e}): the file is corrupt; {}", T::REMEDY))?;
    from_value(value)
}

/// Reads `T` from a parsed JSON value (see [`parse`]).
pub fn from_value<T: Versioned>(value: serde_json::Value) -> std::result::Result<T, String> {
    if !value.is_object() {
        return Err(format!("not a {} (not a JSON object)", T::WHAT));
    }
    if let Some(format) = T::FORMAT
        && value.get("format").and_then(|f| f.as_str()) != Some(format)
    {
        return Err(format!(
            "not a {} (its format is not \"{format}\")",
            T::WHAT
        ));
    }
    let version = match value.get(T::VERSION_FIELD) {
        None => T::UNVERSIONED.ok_or_else(|| {
            format!(
                "{} without a {}: the file is corrupt; {}",
                T::WHAT,
                T::VERSION_FIELD,
                T::REMEDY
            )
        })?,
        Some(v) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| format!("{} {v} is not a version number", T::VERSION_FIELD))?,
    };
    if version > T::VERSION {
        return Err(format!(
            "{} format version {version} comes from a newer cold: this build reads versions {} to \
             {}; use a cold and cold-train as new as the one that wrote it",
            T::WHAT,
            T::OLDEST,
            T::VERSION
        ));
    }
    if version < T::OLDEST {
        return Err(format!(
            "{} format version {version} is older than this build reads ({} to {}); {}",
            T::WHAT,
            T::OLDEST,
            T::VERSION,
            T::REMEDY
        ));
    }
    T::precheck(&value)?;
    serde_json::from_value(value).map_err(|e| format!("{e}; {}", T::REMEDY))
}

/// Reads a `T` file.
pub fn read<T: Versioned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text).map_err(|reason| Error::File {
        path: path.into(),
        reason,
    })
}

/// Reads a `T` file, `None` when there is none.
pub fn read_optional<T: Versioned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map(Some).map_err(|reason| Error::File {
            path: path.into(),
            reason,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The pretty JSON of a `T`.
pub(crate) fn to_json<T: Versioned>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value)
        .map_err(|e| Error::InvalidArgument(format!("serialising the {}: {e}", T::WHAT)))
}

/// Writes a `T` file atomically.
pub fn write<T: Versioned>(path: &Path, value: &T) -> Result<()> {
    atomic::write_atomic(path, &to_json(value)?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Round trip through JSON text, and the same value back.
    pub(crate) fn round_trip<T: Versioned + PartialEq + std::fmt::Debug>(value: &T) {
        let bytes = to_json(value).expect("serialise");
        let text = String::from_utf8(bytes).expect("utf-8");
        let back: T = parse(&text).expect("parse");
        assert_eq!(&back, value, "round trip of the {}", T::WHAT);
    }

    /// A newer version than this build writes is refused as newer, naming the version, even
    /// when the rest of the file would not parse either.
    pub(crate) fn newer_is_refused<T: Versioned + std::fmt::Debug>(value: &T) {
        let mut v = serde_json::to_value(value).expect("value");
        v[T::VERSION_FIELD] = serde_json::json!(T::VERSION + 1);
        v["a_field_of_the_future"] = serde_json::json!(1);
        let e = from_value::<T>(v).expect_err("newer version");
        assert!(
            e.contains(&format!("version {}", T::VERSION + 1)) && e.contains("newer"),
            "{e}"
        );
    }

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Probe {
        format: String,
        version: u32,
        x: f64,
    }

    impl Versioned for Probe {
        const WHAT: &'static str = "probe";
        const FORMAT: Option<&'static str> = Some("probe-format");
        const VERSION: u32 = 2;
        const REMEDY: &'static str = "write it again";
    }

    fn probe() -> Probe {
        Probe {
            format: "probe-format".into(),
            version: 2,
            x: 0.25,
        }
    }

    #[test]
    fn a_probe_round_trips_and_newer_versions_are_refused() {
        round_trip(&probe());
        newer_is_refused(&probe());
    }

    #[test]
    fn other_files_and_missing_fields_are_named() {
        let e = parse::<Probe>(r#"{"format":"other","version":2,"x":1}"#).expect_err("format");
        assert!(e.contains("not a probe"), "{e}");
        let e = parse::<Probe>(r#"{"format":"probe-format","x":1}"#).expect_err("no version");
        assert!(e.contains("without a version"), "{e}");
        let e = parse::<Probe>(r#"{"format":"probe-format","version":0,"x":1}"#).expect_err("old");
        assert!(e.contains("older") && e.contains("write it again"), "{e}");
        // A renamed field is an error, not a default.
        let e = parse::<Probe>(r#"{"format":"probe-format","version":2,"y":1}"#).expect_err("x");
        assert!(e.contains("missing field `x`"), "{e}");
        let e = parse::<Probe>("{").expect_err("json");
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn files_are_written_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("probe.json");
        assert!(read_optional::<Probe>(&p).expect("none").is_none());
        write(&p, &probe()).expect("write");
        assert_eq!(read::<Probe>(&p).expect("read"), probe());
        std::fs::write(&p, "[1]").expect("write");
        let e = read::<Probe>(&p).expect_err("not an object");
        assert!(e.to_string().contains("probe.json"), "{e}");
    }
}
