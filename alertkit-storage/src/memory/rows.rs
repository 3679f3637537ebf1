//! Rows and documents ↔ model values.

#[allow(unused_imports)]
use super::*;
