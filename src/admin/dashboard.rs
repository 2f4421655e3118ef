//! The dashboard page served at `GET /`: one self-contained HTML file (inline CSS and
//! JavaScript, no external assets, no build step), embedded in the binary.

/// The page, as served.
pub const PAGE: &str = include_str!("dashboard.html");
