"""Job plumbing for long runs: resumable shards and manifests, model fingerprints, retries, bounded in-flight work
and progress lines."""
