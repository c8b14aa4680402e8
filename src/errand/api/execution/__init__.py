"""The execution dialect (spec/execution-api.txt): asynchronous booking jobs, snake_case error codes."""
