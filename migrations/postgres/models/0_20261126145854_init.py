from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "audit_events" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "request_id" VARCHAR(64) NOT NULL,
    "time" TIMESTAMPTZ NOT NULL,
    "tenant_id" INT,
    "key_id" INT,
    "key_prefix" VARCHAR(16),
    "surface" VARCHAR(8) NOT NULL,
    "method" VARCHAR(8) NOT NULL,
    "path" VARCHAR(255) NOT NULL,
    "model" VARCHAR(255),
    "backend" VARCHAR(100),
    "status" INT NOT NULL,
    "latency_ms" DOUBLE PRECISION,
    "ttfb_ms" DOUBLE PRECISION,
    "prompt_tokens" INT NOT NULL,
    "completion_tokens" INT NOT NULL,
    "tokens_estimated" BOOL NOT NULL,
    "client_ip" VARCHAR(64),
    "user_agent" VARCHAR(255),
    "error" VARCHAR(64)
);
CREATE INDEX IF NOT EXISTS "idx_audit_event_request_69fae3" ON "audit_events" ("request_id");
CREATE INDEX IF NOT EXISTS "idx_audit_event_time_9c9f85" ON "audit_events" ("time");
CREATE INDEX IF NOT EXISTS "idx_audit_event_tenant__48f365" ON "audit_events" ("tenant_id");
COMMENT ON TABLE "audit_events" IS 'Metadata of one request: who, what, where it went, what it cost, how it ended.';
CREATE TABLE IF NOT EXISTS "prompt_logs" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "request_id" VARCHAR(64) NOT NULL,
    "key_id" INT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "request_body" TEXT NOT NULL,
    "response_text" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_prompt_logs_request_5179e1" ON "prompt_logs" ("request_id");
CREATE INDEX IF NOT EXISTS "idx_prompt_logs_key_id_7ace05" ON "prompt_logs" ("key_id");
CREATE INDEX IF NOT EXISTS "idx_prompt_logs_expires_bc329a" ON "prompt_logs" ("expires_at");
COMMENT ON TABLE "prompt_logs" IS 'A request body and response text kept for a key that opted in, until expires_at.';
CREATE TABLE IF NOT EXISTS "tenants" (
    "rpm" INT,
    "tpm" BIGINT,
    "max_concurrent" INT,
    "daily_tokens" BIGINT,
    "monthly_tokens" BIGINT,
    "total_tokens" BIGINT,
    "allowed_models" JSONB,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "id" SERIAL NOT NULL PRIMARY KEY,
    "name" VARCHAR(100) NOT NULL UNIQUE,
    "status" VARCHAR(16) NOT NULL,
    "log_prompts" BOOL NOT NULL,
    "prompt_ttl_days" INT NOT NULL
);
COMMENT ON COLUMN "tenants"."status" IS 'ACTIVE: active\nDISABLED: disabled';
COMMENT ON TABLE "tenants" IS 'A customer of the gateway; all its keys share its limits.';
CREATE TABLE IF NOT EXISTS "api_keys" (
    "rpm" INT,
    "tpm" BIGINT,
    "max_concurrent" INT,
    "daily_tokens" BIGINT,
    "monthly_tokens" BIGINT,
    "total_tokens" BIGINT,
    "allowed_models" JSONB,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "id" SERIAL NOT NULL PRIMARY KEY,
    "name" VARCHAR(100) NOT NULL,
    "prefix" VARCHAR(16) NOT NULL UNIQUE,
    "key_hash" VARCHAR(255) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "expires_at" TIMESTAMPTZ,
    "revoked_at" TIMESTAMPTZ,
    "last_used_at" TIMESTAMPTZ,
    "log_prompts" BOOL,
    "prompt_ttl_days" INT,
    "tenant_id" INT NOT NULL REFERENCES "tenants" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_api_keys_tenant__bcb8b7" UNIQUE ("tenant_id", "name")
);
CREATE INDEX IF NOT EXISTS "idx_api_keys_prefix_10c459" ON "api_keys" ("prefix");
COMMENT ON COLUMN "api_keys"."status" IS 'ACTIVE: active\nDISABLED: disabled\nREVOKED: revoked';
COMMENT ON TABLE "api_keys" IS 'One API key of a tenant; null limits inherit the tenant''s.';
CREATE TABLE IF NOT EXISTS "usage_daily" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "day" DATE NOT NULL,
    "requests" BIGINT NOT NULL,
    "prompt_tokens" BIGINT NOT NULL,
    "completion_tokens" BIGINT NOT NULL,
    "key_id" INT NOT NULL REFERENCES "api_keys" ("id") ON DELETE CASCADE,
    "tenant_id" INT NOT NULL REFERENCES "tenants" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_usage_daily_key_id_ecae50" UNIQUE ("key_id", "day")
);
CREATE INDEX IF NOT EXISTS "idx_usage_daily_tenant__d66d0c" ON "usage_daily" ("tenant_id", "day");
COMMENT ON TABLE "usage_daily" IS 'What one key used on one day (in the budget time zone).';
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSONB NOT NULL
);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        """


MODELS_STATE = (
    "eJztnVtz2jgUgP+KhpdtZ7KdlFw3fYKEdNkkkEnoZXoZj7AFaDCSa8shbDf/fSXZxncHEy"
    "7G8UsbSzqy+Y6QdXSODr9rE6oh3XrXMPAVmtXOwO8agRPE/4jU7IEaNAy/XBQw2NdlU2hg"
    "ZYxmshD2LWZClfHyAdQtxIs0ZKkmNhimRLTuEgQat23AJQAdAAgYIpCwD4DYug50PMHMAp"
    "iMkIkZYCPk1v9hvRP9a1TlN8Bk+PKubIJ/2UhhdIh4nck7/P695rQQ1RLEz5/8L0w09Igs"
    "0UBcGmNlgJGuhXBhTcjIcoXNDFnWJuxSNhTP3VdUqtsT4jc2ZmxEybw1dm47RASZkCHRPT"
    "NtAVB8Gpe1x9R5dr+J84gBGQ0NoK0LNQhp5wH8spqidLo95b7VU5RaTEWeRAC1W6RSItTL"
    "H9WSn34oHuHP+vvDk8PTg+PDU95EPua85OTJubUPxhGUeDq92pOshww6LSRjH6ppTHJQdV"
    "s/j9WDGODqUptj9Zr4XP3RvDNgfZAsCWQTD1NZstKx/KtePzg4qe8fHJ8eHZ6cHJ3uz6HG"
    "q7LoNtsfBWDegPKJzpkB48Qn8JHjJKptmsihtuAojguWSAkrG9AaxPqMT91jRKx8IzsqWS"
    "K6mx7ilLDRklqIy1Z6WFYPjDKoL6WFqGSlg2V1AHWdTpGm+KvjsBb+ue92knUQl4xoQcMq"
    "A//x1ay1g9rIACuQiJ4nlvVLFwWdz427878bd29uGl/fhoF3zq+7TcmGWmxoyl5kB82IHl"
    "QTCTYKTHjlXvAahicoWQ9hyagOXNF33h8LaCK2VN/2F4N/QK1L9Jk7SjJU02vftO57jZvb"
    "kH4uGr2WqKnL0lmk9M1xRGfzTsCXdu9vIC7Bt26nFVXjvF3vW008E7QZVQidKlAL2DNeqU"
    "ctpHXb0JbUeliy0npRtO4xCqjdfXpf6/L/mL7PR9BM1rXXPqJlTmsX9SrsBB2RIRvxy/f7"
    "+xmK9eZV3io6r7pVdacuPJcaJhrgxzyEfYnVMN7u5kaY8PEigKPfhgDf4yjeMZopI2iN8g"
    "AOypRwGNePjhagzFulYpZ1Yc4Wg8xOWJIJyi1iTyTpNn8qSFQUI+5Lb453DaoMP3jPsijz"
    "WuO81/7cOgOO9A9y0b5vNK9bF2dAw5Z4Hu0HuWt97l6JIhM98GW/Ft1S3c5XAT0amL8Xln"
    "h/hyVX8P7enfVzwV/X8VWaO+SW0HJYstJykbWsQ4sptrWUnqOylaYLrWk6VAyTTgyWtO1E"
    "qY4gSdFzWDKi5j4XLZVmm93udUipzXZkQ6nz6abZ4i9NqU3eCLOUfSaHmsKYrmhwlsA9da"
    "8vQbJE232r85RJ/6+Sy50bklkKauGW5SugKlzlg3GiX9d3socJX1IT4SG5QrPYojyC1Y1O"
    "6M072jHAT94Y8kr9b5YJp/P4gvDQ4p+ff2rkzA3njfvzxkWrJjn3oTqeQlNTUoDbFhwm7J"
    "U0XbHLqzukQ/kZUlF/El1cCOdZiXBLeLROA9BCOONVk/okWgIJJ6O59xZ38kJnbA2z1gOS"
    "d4sH1vi1e5nBNaKdgkTDBQNsbhCDIqRChMRQgripx3VgsTMwHdE9/g9k4l9kIoAZmPJ+nU"
    "JxpfIlwh4Y0am4QFxXWjzoZvXdJwTivCTsJsvjVbLIm414uTLicxzVJ74t0zexwlLr2lbZ"
    "3lbh8eEC+yPHh6n7I6IqsijBSTvd2baUJ7MZn8YmaZfJhtrOcvP5NfzuRRGGN9ZzAfUFKo"
    "soGWd+V1BYaqlJvmhc17wJbtnmAKq5PJoBkRJ6g04XIHyaCvg0ynfCF5c010LFl6joPkfX"
    "gCyXJ9NrX0Kya/FiSssw1+D1BMo3964FsLD5uUmaB3FApHyQ1xJSkuaLT12apbrfX+++at"
    "jZxo0BdaZMEphe6hSmUA2LRcgOhNzujd4MbhfdT83rFri9a52379tu1OncDJSVYb/LXatx"
    "HTXB2aCfF3NApmK8AGPPRZUSyf6sa+tlcexLzRX7OzJRqJyQjsRT5MebKFshjh/DEGwUZD"
    "E8kQhihDN94kniyznGl6I8L9lZ17iqYyS2xYw8S7iQUPkWcavfirYtZCpwmHimMR1zWKp8"
    "nNdikSDTpGYeynOB8gFezUCOhSSk+87X6Ri+leuVazqsJfiF/cq9LLewu+bR6XBBr3DDc9"
    "SCPtVmABKNF1gGhy7SIjwyMEYGAwNqAijzKTDhs6UGHy4Akz1gE4Z14Ifbxv3C67hB5Rmu"
    "PMOVZzjjdbxpX1fR8K7aTKqOj5bsIOEix0e9aUe8t+J67/F3V/Z05cmVwpeRpdfW115Ipb"
    "ET23O1Xnc7H73m0WPcTxH4zhpBEWuEfPQjghX+JfAX6OhVwd4tOzLBpYYZFcTYcUO0Eywd"
    "P3g73cxxYp0WNnFU22J0gkwRmyryvQ35aJvC2QcAdR2IZHAiTR2w+AIUyUsnRVySLfOCnl"
    "ZstLwWi6XKIldMsFUWudqGzeoqi9yGBnSVRa4AQ7zKIlcIPVRZ5LavgyqLXG5TrMoiV20D"
    "htpVWeQqre9OFrkiZTjbZMDvK0y+Fd1kWkgnKz9ltOWkLa80Nm37aVuWAn+y3tX1atOLLJ"
    "IHw/uVksiwz5EGw/89lB17haemwAhH91V5QjaeJyRALMFLEuaZ7imRqlO0ecNnvSVfZPwV"
    "QTIYSyRd4xfyms8z4A0m0u3Rt7UhYkAsW8G/vPJt3Ffygn4Sf4Fn7Hy9uHTs13eCP88zr6"
    "+ivwoX/SV0E8MvTKi0zdSk8ImQ3bS7c0niYRlu98TCIGQsSc6tt6BUaU5kbHjT7ZlTR1n4"
    "y3vwaMM6WOB4UpYeyn1CacO6KGBI6U47GauMkquiGjP5qoySa8koGZkNVkC1dFZzlKo/B+"
    "ZN0rlOy7KBTKyOaknZJ52avczMk36b54zJdJ5VMFyxguEekGm5+zeLejwCIqUIsd7A0U3x"
    "pcpB2G1eQrprcSrxO7LEcLj0+IiAyIsCI4pGexOREVsNJH/6H/vSo+Q="
)
