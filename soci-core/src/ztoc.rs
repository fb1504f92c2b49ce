//! zTOC model.
