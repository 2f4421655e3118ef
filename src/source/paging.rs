//! Reading a paginated listing to its end (Kinesis ListShards' NextToken, DynamoDB
//! DescribeStream's LastEvaluatedShardId), one rule for both sources: the next page
//! starts at the token the last page returned, and the listing ends at a page without
//! one. A page that returns the token it was asked with ends it too: a server that
//! repeats its page would otherwise loop forever. The lease table's Scan
//! (LastEvaluatedKey, a lease key) reads through it too, hence `pub(crate)` and any error.

use std::future::Future;

/// Every item of a listing: `fetch(token)` reads the page at `token` (`None`: the first)
/// and returns its items and the token of the next page.
pub(crate) async fn all_pages<T, E, F, Fut>(mut fetch: F) -> Result<Vec<T>, E>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), E>>,
{
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let (page, next) = fetch(token.clone()).await?;
        items.extend(page);
        match next {
            Some(next) if !next.is_empty() && token.as_ref() != Some(&next) => token = Some(next),
            _ => return Ok(items),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceError;

    /// Pages of `pages`, each answering with the token of the page after it, or `last`.
    async fn read(pages: &[&[u32]], last: Option<&str>) -> (Vec<u32>, Vec<Option<String>>) {
        let mut asked = Vec::new();
        let items = all_pages(|token: Option<String>| {
            asked.push(token.clone());
            let index: usize = token.as_deref().map_or(0, |t| t.parse().expect("token"));
            let next = if index + 1 < pages.len() {
                Some((index + 1).to_string())
            } else {
                last.map(str::to_string)
            };
            let page = pages[index].to_vec();
            async move { Ok::<_, SourceError>((page, next)) }
        })
        .await
        .expect("pages");
        (items, asked)
    }

    #[tokio::test]
    async fn pages_are_read_in_order_until_one_has_no_next_token() {
        let (items, asked) = read(&[&[1, 2], &[3], &[4, 5]], None).await;
        assert_eq!(items, vec![1, 2, 3, 4, 5]);
        assert_eq!(asked, vec![None, Some("1".into()), Some("2".into())]);
    }

    #[tokio::test]
    async fn an_empty_or_repeated_token_ends_the_listing() {
        let (items, _) = read(&[&[1], &[2]], Some("")).await;
        assert_eq!(items, vec![1, 2]);
        // The last page answers with its own token: it is not read again.
        let (items, asked) = read(&[&[1], &[2]], Some("1")).await;
        assert_eq!(items, vec![1, 2]);
        assert_eq!(asked.len(), 2);
    }
}
