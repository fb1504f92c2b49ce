//! Go archive/tar-compatible tar reader.
