"""The only code that talks to AWS (DynamoDB, S3, SQS, SES, Step Functions, ...)."""
