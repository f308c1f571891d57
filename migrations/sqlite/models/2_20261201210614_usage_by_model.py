from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# Written by hand: SQLite cannot drop the inline UNIQUE ("key_id", "day") constraint that aerich
# would only DROP INDEX (a no-op here), so the table is rebuilt with the model column and the
# new unique index, keeping every row (model '' = before models were counted).


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE "usage_daily_new" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "day" DATE NOT NULL,
    "requests" BIGINT NOT NULL,
    "prompt_tokens" BIGINT NOT NULL,
    "completion_tokens" BIGINT NOT NULL,
    "key_id" INT NOT NULL REFERENCES "api_keys" ("id") ON DELETE CASCADE,
    "tenant_id" INT NOT NULL REFERENCES "tenants" ("id") ON DELETE CASCADE,
    "model" VARCHAR(255) NOT NULL DEFAULT ''
) /* What one key used on one day (in the budget time zone) with one model. */;
        INSERT INTO "usage_daily_new" ("id", "day", "requests", "prompt_tokens", "completion_tokens", "key_id", "tenant_id", "model")
            SELECT "id", "day", "requests", "prompt_tokens", "completion_tokens", "key_id", "tenant_id", '' FROM "usage_daily";
        DROP TABLE "usage_daily";
        ALTER TABLE "usage_daily_new" RENAME TO "usage_daily";
        CREATE INDEX IF NOT EXISTS "idx_usage_daily_tenant__d66d0c" ON "usage_daily" ("tenant_id", "day");
        CREATE UNIQUE INDEX IF NOT EXISTS "uid_usage_daily_key_id_de0db3" ON "usage_daily" ("key_id", "day", "model");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE "usage_daily_old" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "day" DATE NOT NULL,
    "requests" BIGINT NOT NULL,
    "prompt_tokens" BIGINT NOT NULL,
    "completion_tokens" BIGINT NOT NULL,
    "key_id" INT NOT NULL REFERENCES "api_keys" ("id") ON DELETE CASCADE,
    "tenant_id" INT NOT NULL REFERENCES "tenants" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_usage_daily_key_id_ecae50" UNIQUE ("key_id", "day")
) /* What one key used on one day (in the budget time zone). */;
        INSERT INTO "usage_daily_old" ("day", "requests", "prompt_tokens", "completion_tokens", "key_id", "tenant_id")
            SELECT "day", SUM("requests"), SUM("prompt_tokens"), SUM("completion_tokens"), "key_id", MIN("tenant_id")
            FROM "usage_daily" GROUP BY "key_id", "day";
        DROP TABLE "usage_daily";
        ALTER TABLE "usage_daily_old" RENAME TO "usage_daily";
        CREATE INDEX IF NOT EXISTS "idx_usage_daily_tenant__d66d0c" ON "usage_daily" ("tenant_id", "day");"""


MODELS_STATE = (
    "eJztnVtzmzgUgP+Kxi/bzmQ7qXPd9slO3K63SdxJ3Mv0MowCsq0JliiIOt5u/vtKAowR4A"
    "DBNqa8tEHSkfF3hNDROTr+1ZpSA5nOi46F36F56xX41SJwivgfSs0eaEHLCstFAYO3pmwK"
    "LazdobkshLcOs6HOePkImg7iRQZydBtbDFMiWg8IAp33fcAlAB0BCBgikLDXgLimCUw8xc"
    "wBmEyQjRlgE+TX/+G8EP0bVOcfgMn46V25BP9wkcboGPE6m3f49WvLayGqJYjv3/lfmBjo"
    "Hjmigbi07rQRRqYRwYUNISPLNTa3ZFmfsDeyobjvW02npjslYWNrziaULFpj72PHiCAbMi"
    "S6Z7YrAIpv47MOmHr3HjbxbnFJxkAj6JpCDULau4GwrKVpV4OhdtMbalorpqJAYgm1X6RT"
    "ItTLb9WR334sbuHP9svDk8PTg+PDU95E3uai5OTB++gQjCco8VwNWw+yHjLotZCMQ6i2Nc"
    "1B1W/9ONYA4hJXn9oCa9Ak5BqO5p0BG4JkSSC7eJzKktWO5V/t9sHBSXv/4Pj06PDk5Oh0"
    "fwE1XrWKbrf/VgDmDSif6LwZME58Cu85TqK7to08ahlHcVywRkoobUAbEJtzPnXfIeLkG9"
    "mqZI3obnqIU8ImBbUQl230UFQPjDJoFtKCKtnooKgOoGnSGTK0cHUc1cI/N4OrZB3EJRUt"
    "GFhn4D++mnV2UBsrwAokouep4/wwRcHVx8712d+d62eXnc/Po8Cvzi4GXcmGOmxsy15kB1"
    "1FD7qNBBsNJrxyz3kNw1OUrIeopKoDX/RF8EcGTcSW6tt+MPgXNAbEnPujZIVqhv3L3s2w"
    "c/k+op/zzrAnatqydK6UPjtWdLboBHzqD/8G4hJ8GVz1VDUu2g2/tMQ9QZdRjdCZBo0ley"
    "YoDahFtO5aRkGtRyUbrVdF6wGjJbX7dx9qXf4f0/fZBNrJug7aK1rmtHZRr8JOMBEZswm/"
    "fLm/v0KxwbzKW6nzql/V9uqic6lloxG+z0M4lCiH8XY3N6KEj7MAVp+GJb7HKt47NNcm0J"
    "nkAbwsU8Nh3D46ykCZt0rFLOuinB0GmZuwJBOUe8SdStJ9fleQ6ChGPJTeHO8W1Bn+GdxL"
    "Vuatztmw/7H3CnjS38h5/6bTveidvwIGdsT9GN/Ide/j4J0ostFPvuw31C3V7TwK6N7C/L"
    "1Q4P0dlSzh/b076+eKv67jqzR/yBXQclSy0XKVtWxCh2muU0jPqmyj6Uprmo41y6ZTiyVt"
    "O1FqIkhS9ByVVNR8y0VrpdnuYHARUWq3r2woXX247Pb4S1NqkzfCLGWfyaOmMWZqBpwncE"
    "/d60uQrNF2X3meMun/1XK5cyMyhaBWblleAlXhKh/dJfp1Qyd7lPAbaiM8Ju/QPLYoV7D6"
    "0QnDRUc7BvghGENBafhk2XC2iC+IDi3+/fm3Rt7ccNa5Oeuc91qS8y3U72bQNrQU4K4Dxw"
    "l7JV1f7M27a2RC+R1SUX8QXZwL51mNcEt4tE2XoEVwxqum7alaAgknY/ifLT4pCJ1xDcx6"
    "P5H8tHhgTVi7tzK4RrTTkGiYMcDmEjEoQipESAwliJt6XAcOewVmE7rH/4FM/ItsBDADM9"
    "6vVyiudL5E2AMTOhMXiOvKiAfdlN99QiDOU8JuVnm8ahZ5sxEv14r4HE/1iW/L9E2sqFTt"
    "dgqPDzNsjxwfpm6PiCrFqWVi/hhpxWgnCheCXrWV35qpBwZmHgM2kNmMI2mTY7xOhut21v"
    "iPPz67F7oZ9WbkAhoKNGZoMs78/reoVP0m+fI9D45rj6Cey428JFJDF9xpBsKnqYBPVb5T"
    "vqKnudYroUQN6R60M+A9aKfyFVXKhiBkuTzIQfsawm3vH2YZvaJZuv9YVqpxrtwozzWEA4"
    "H6zcBr8dCL7RZEcs0SSyL1g7yWaJ60MIjUBVpq5MPvu6Ud9XNyk0Cfa9MEpm9MClOoRsUU"
    "siMht3ujdwW388GH7kUPvL/unfVv+n7A78IYlJVRl9d1r3OhGuJsdJsX85JMwzgD48A7mH"
    "KI4FGv4tOOEBSaK/Z3ZKLQOSETibvIjzdRtkEcPwEj2GjIYXgqEcQIrwxHSBIvFpNQiPKi"
    "ZGejEvw9ZmwV2Jj2hOq3iCt/Q9p1kK3BceJx0nTMUan6cT56mcWm5q1SScs6JSDVtqmdh/"
    "JCoH6Ayx/IMjFDHroLgfrRLWdHKBZrkx4Uss6Ih/dyNXhBx62EgIewcm9VvIO/ojTpOGO4"
    "QyeIQAC31JgDSAxe4Fgcusj3cc/AHbIYGFEbQJkohIlgBGrx4QIw2QMuYdgEYRx5POBhHR"
    "/QhDw0IQ+l773WKeZh0/7EquEt2whtzkXX7IRslnPRwbQj3ltxvQ/5u2v1dBXI1cJZtEqv"
    "vc/DiEpjqQgWar0YXL0Nmqv5CR4U+N4aQRNrhHz0FcEGfwH8FTpTWLF3y45McKmhXBUxdv"
    "yzBwmWTngqId3M8eLJMps4uuswOkW2CLoWiQzHfLTN4Pw1gKYJRJZDkX8ROHwBiuSll/sw"
    "yZZ5Qk8lGy2/i8XSpEesJtgmPWJrw2Z1kx5xQwO6SY9YgSHepEeshB6a9Ijb10GTHjG3Kd"
    "akR2y2ASPtmvSIjdZ3Jz1ihQ7kbjSc+jfMKqduMmXSSeknubacjeg3jfzbfj6iQuBP1ru6"
    "LjdvTpYEL8HP7yjDPkd+l/CHfnbsFZ6a2yUaO9kkwEmEtE4PyRKxBC9JlGe6p0SqTjMWDR"
    "/1lnyS8VcEyWAskU2QX8hrPs+AZ5hIt8eta4wRA2LZCv7llc/BDLOJbCbvIe46Ka/bxB+e"
    "uvMePt5ZKyAY+/Wp5Z+nEg2/N0FilQwS85UYt7TS9lyToiwi5tXuTjmJJ5a4ebTdQ7bFVt"
    "A5184F7ZW1nLH1Q3py7oAuS9Xm2NGG9z4fOVq3Cn99T9dtWAcZzuCt0kO9j+FtWBcVjOzd"
    "aV9vk7G2LKoxy7vJWLuWjLXKbFAC1dptXqhUwzkwbxLgdRr4HWRjfdJKym7r1eytzGwbtn"
    "nMpk/n2cQkVism8SeyHX8bLasltyRSi0j3DVhz4qHKQdhvXkO6a/Ht8U9kiVGJ6WEqSyJP"
    "ik+pGu1NBKhsNZ7/4X8+twiP"
)
