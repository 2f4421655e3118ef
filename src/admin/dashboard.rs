//! The dashboard page served at `GET /`: one self-contained HTML file (inline CSS and
//! JavaScript, no external assets, no build step), embedded in the binary.
//!
//! The page polls a page of `GET /shards` (`?limit=200`, paged with `after`), the stuck
//! shards (`?stuck=true&limit=200`, shown first) and the iterator-age series of the same
//! two pages from `GET /history` (relative URLs, so it works behind a path prefix) every
//! 2 s: unpaged, 10,000 shards are ~9 MB a poll and their history more. Tests find rows as
//! `tr[data-shard="<mapping>/<shard_id>"]`, stuck ones with the class `stuck`;
//! `tests/dashboard.rs` checks it in headless Chromium.

/// The page, as served.
pub const PAGE: &str = include_str!("dashboard.html");

#[cfg(test)]
mod tests {
    use super::PAGE;

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let lower = PAGE.to_ascii_lowercase();
        for external in [
            "<link", "<img", "<iframe", "src=", "@import", "url(", "//fonts.",
        ] {
            assert!(!lower.contains(external), "the page holds {external:?}");
        }
        // The only absolute URL is the SVG namespace, which is a name, not a fetch.
        let urls: Vec<&str> = lower
            .matches("http://")
            .chain(lower.matches("https://"))
            .collect();
        assert_eq!(urls.len(), 1, "absolute URLs in the page: {urls:?}");
        assert!(lower.contains("\"http://www.w3.org/2000/svg\""));
    }
}
