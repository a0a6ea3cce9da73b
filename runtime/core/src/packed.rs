//! Compact JSON for the manifest's big numeric arrays: little-endian floats in base64, written
//! as `"f32le:<base64>"` or `"f64le:<base64>"`. A subspace mixture holds a covariance of K x K
//! per component per class and K directions of C x H x W values; as JSON numbers (about 20
//! characters each) a 10-component mixture over 64 directions came to 19 MB, five times the
//! network's weights; packed, 3.0 MB. Reading also takes the plain JSON arrays older bundles
//! hold, and small covariances (a channel-mean mixture's) are still written as plain numbers.
//!
//! Used through serde's `with`: [`floats`] for a vector of float32, [`rows`] for a vector of
//! them, and [`symmetric`] for a symmetric float64 matrix (its lower triangle is stored).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

/// A float type a packed array holds, named by its prefix.
pub trait Packable: Copy {
    const PREFIX: &'static str;
    const BYTES: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
}

impl Packable for f32 {
    const PREFIX: &'static str = "f32le:";
    const BYTES: usize = 4;
    fn put(self, out: &mut Vec<u8>) {
        out.extend(self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl Packable for f64 {
    const PREFIX: &'static str = "f64le:";
    const BYTES: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        out.extend(self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

/// `values` as `"<prefix><base64>"`.
pub fn encode<T: Packable>(values: impl IntoIterator<Item = T>) -> String {
    let mut bytes = Vec::new();
    for v in values {
        v.put(&mut bytes);
    }
    format!("{}{}", T::PREFIX, STANDARD.encode(bytes))
}

/// The values of an [`encode`]d string of `T`.
pub fn decode<T: Packable>(text: &str) -> Result<Vec<T>, String> {
    let body = text.strip_prefix(T::PREFIX).ok_or_else(|| {
        format!(
            "a packed array here must start with \"{}\" (little-endian floats in base64), got \
             \"{}\"",
            T::PREFIX,
            text.chars().take(12).collect::<String>()
        )
    })?;
    let bytes = STANDARD.decode(body).map_err(|e| {
        format!("a packed array is not valid base64 ({e}): the manifest is damaged")
    })?;
    if bytes.len() % T::BYTES != 0 {
        return Err(format!(
            "a packed array has {} bytes, not a whole number of {}-byte floats: the manifest is \
             damaged",
            bytes.len(),
            T::BYTES
        ));
    }
    Ok(bytes.chunks_exact(T::BYTES).map(T::get).collect())
}

/// A vector, plain or packed.
#[derive(Deserialize)]
#[serde(untagged)]
enum Floats<T> {
    Packed(String),
    Plain(Vec<T>),
}

fn unpack<'de, D: Deserializer<'de>>(v: Floats<f32>) -> Result<Vec<f32>, D::Error> {
    match v {
        Floats::Plain(v) => Ok(v),
        Floats::Packed(s) => decode::<f32>(&s).map_err(D::Error::custom),
    }
}

/// `Vec<f32>`, packed.
pub mod floats {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(v.iter().copied()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        unpack::<D>(Floats::deserialize(d)?)
    }
}

/// `Vec<Vec<f32>>`, each row packed.
pub mod rows {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[Vec<f32>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|r| encode(r.iter().copied())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f32>>, D::Error> {
        Vec::<Floats<f32>>::deserialize(d)?
            .into_iter()
            .map(unpack::<D>)
            .collect()
    }
}

/// A symmetric `Vec<Vec<f64>>`: its lower triangle row by row, packed as float64 (so the file
/// round-trips exactly), when larger than [`symmetric::PLAIN_UP_TO`] on a side.
pub mod symmetric {
    use super::*;

    /// Matrices up to this side stay plain JSON (a channel-mean mixture's 1x1 or 3x3 covariance
    /// reads as numbers); larger ones are packed.
    pub const PLAIN_UP_TO: usize = 8;

    pub fn serialize<S: Serializer>(m: &[Vec<f64>], s: S) -> Result<S::Ok, S::Error> {
        if m.len() <= PLAIN_UP_TO {
            return s.collect_seq(m);
        }
        let lower = m
            .iter()
            .enumerate()
            .flat_map(|(i, row)| row.iter().take(i + 1).copied());
        s.serialize_str(&encode(lower))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
        match Floats::<Vec<f64>>::deserialize(d)? {
            Floats::Plain(m) => Ok(m),
            Floats::Packed(text) => {
                let lower = decode::<f64>(&text).map_err(D::Error::custom)?;
                // n (n + 1) / 2 values make an n x n matrix.
                let n = ((((8 * lower.len() + 1) as f64).sqrt() - 1.0) / 2.0).round() as usize;
                if n * (n + 1) / 2 != lower.len() {
                    return Err(D::Error::custom(format!(
                        "a packed symmetric matrix has {} values, not the lower triangle of a \
                         square matrix: the manifest is damaged",
                        lower.len()
                    )));
                }
                let at = |i: usize, j: usize| {
                    let (i, j) = if j > i { (j, i) } else { (i, j) };
                    lower[i * (i + 1) / 2 + j]
                };
                Ok((0..n).map(|i| (0..n).map(|j| at(i, j)).collect()).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Arrays {
        #[serde(with = "super::floats")]
        mean: Vec<f32>,
        #[serde(with = "super::rows")]
        basis: Vec<Vec<f32>>,
        #[serde(with = "super::symmetric")]
        cov: Vec<Vec<f64>>,
    }

    fn arrays() -> Arrays {
        Arrays {
            mean: vec![0.5, -1.25, 3.0e-7],
            basis: vec![vec![1.0, 0.0], vec![-0.6, 0.8]],
            cov: vec![
                vec![2.0, 0.5, -0.25],
                vec![0.5, 1.0, 0.125],
                vec![-0.25, 0.125, 3.0],
            ],
        }
    }

    #[test]
    fn packed_arrays_round_trip_and_are_strings() {
        let json = serde_json::to_string(&arrays()).expect("serialise");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert!(v["mean"].as_str().is_some_and(|s| s.starts_with("f32le:")));
        assert!(v["basis"][1].as_str().is_some());
        // A 3 x 3 matrix stays plain numbers.
        assert!(v["cov"].is_array(), "{}", v["cov"]);
        let back: Arrays = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, arrays());
        // A 9 x 9 one is packed: its triangle, 45 float64, 360 bytes, 480 base64 characters.
        let n = super::symmetric::PLAIN_UP_TO + 1;
        let big = Arrays {
            cov: (0..n)
                .map(|i| (0..n).map(|j| 1.0 / (1.0 + (i + j) as f64)).collect())
                .collect(),
            ..arrays()
        };
        let v = serde_json::to_value(&big).expect("value");
        assert_eq!(v["cov"].as_str().map(str::len), Some("f64le:".len() + 480));
        assert_eq!(serde_json::from_value::<Arrays>(v).expect("back"), big);
    }

    #[test]
    fn plain_arrays_still_read() {
        let plain = r#"{"mean": [0.5, -1.25, 3.0e-7], "basis": [[1.0, 0.0], [-0.6, 0.8]],
            "cov": [[2.0, 0.5, -0.25], [0.5, 1.0, 0.125], [-0.25, 0.125, 3.0]]}"#;
        let a: Arrays = serde_json::from_str(plain).expect("plain");
        assert_eq!(a, arrays());
    }

    #[test]
    fn damaged_packing_is_refused_with_a_reason() {
        let with = |field: &str, text: &str| {
            let mut v = serde_json::to_value(arrays()).expect("value");
            v[field] = serde_json::Value::String(text.into());
            serde_json::from_value::<Arrays>(v)
                .expect_err("damaged")
                .to_string()
        };
        assert!(with("mean", "f32le:@@@").contains("not valid base64"));
        assert!(with("mean", "f32le:AAA=").contains("whole number"));
        assert!(with("mean", "f64le:AAAAAAAAAAA=").contains("must start with \"f32le:\""));
        let five = super::encode([1.0f64; 5]);
        assert!(with("cov", &five).contains("lower triangle"));
    }
}
