//! A test's Kinesis stream that deletes itself (and its consumers) when the test ends,
//! passed or failed: kinesis-local holds at most 50 open shards and has no reset.
//!
//! The delete runs in `Drop`, on a thread of its own with a runtime and client of its
//! own, because the test's runtime may be blocked (or single-threaded) right there.

/// A stream made for one test, deleted when dropped.
pub struct TestStream {
    pub name: String,
    pub arn: String,
}

impl TestStream {
    /// Creates a stream of `shards` shards named after `prefix` and waits until it is ACTIVE.
    pub async fn create(client: &aws_sdk_kinesis::Client, prefix: &str, shards: i32) -> TestStream {
        let name = super::unique(prefix);
        let arn = super::create_stream(client, &name, shards).await;
        TestStream { name, arn }
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let arn = self.arn.clone();
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let config = super::sdk_config(&super::kinesis_endpoint()).await;
                aws_sdk_kinesis::Client::new(&config)
                    .delete_stream()
                    .stream_arn(&arn)
                    .enforce_consumer_deletion(true)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}"))
            })
        })
        .join();
        match deleted {
            Ok(Ok(())) => {}
            // Already deleted by the test itself.
            Ok(Err(e)) if e.contains("ResourceNotFoundException") => {}
            Ok(Err(e)) => eprintln!("could not delete test stream {}: {e}", self.name),
            Err(_) => eprintln!("could not delete test stream {}", self.name),
        }
    }
}
