"""The HTTP surface: one FastAPI app per Lambda function, built from that function's routers."""
