//! A degradation prepared at each size of the images it meets.

use super::{Degradation, Prepared};
use crate::error::Result;

/// A degradation prepared at the sizes of the images it meets: the most recent few kept
/// ([`Prepared`] at each), the rest computed again when they come back.
#[derive(Debug)]
pub struct PreparedSizes {
    degradation: Degradation,
    recent: Vec<((usize, usize), Prepared)>,
    keep: usize,
}

impl PreparedSizes {
    /// Over `degradation` (whose own size is prepared first when asked for), keeping `keep`
    /// sizes.
    pub fn new(degradation: &Degradation, keep: usize) -> Self {
        PreparedSizes {
            degradation: degradation.clone(),
            recent: Vec::new(),
            keep: keep.max(1),
        }
    }

    /// D prepared for images of `height x width`.
    pub fn at(&mut self, height: usize, width: usize) -> Result<&Prepared> {
        let pos = match self
            .recent
            .iter()
            .position(|(hw, _)| *hw == (height, width))
        {
            Some(i) => i,
            None => {
                if self.recent.len() >= self.keep {
                    self.recent.remove(0);
                }
                let p = self.degradation.at_size(height, width)?.prepare()?;
                self.recent.push(((height, width), p));
                self.recent.len() - 1
            }
        };
        // The most recently used last.
        let e = self.recent.remove(pos);
        self.recent.push(e);
        Ok(&self.recent.last().expect("just pushed").1)
    }
}
