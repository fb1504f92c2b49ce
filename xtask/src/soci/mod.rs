//! The commands users run on their images and layers: `ztoc`, `index`, `demo`, `doctor`,
//! `backfill`.

pub mod backfill;
pub mod demo;
pub mod doctor;
pub mod index;
pub mod wait;
pub mod ztoc;
