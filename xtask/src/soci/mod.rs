//! The commands users run on their images and layers: `ztoc`, `index`, `demo`.

pub mod demo;
pub mod index;
pub mod ztoc;
