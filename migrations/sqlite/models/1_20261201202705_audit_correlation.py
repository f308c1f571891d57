from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# SQLite cannot alter a column's type, and does not enforce VARCHAR lengths either: the wider
# method, path and user_agent columns of the PostgreSQL migration need nothing here.


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_audit_event_request_69fae3";
        ALTER TABLE "audit_events" ADD "limit" VARCHAR(32);
        ALTER TABLE "audit_events" ADD "client_request_id" VARCHAR(64);
        CREATE UNIQUE INDEX IF NOT EXISTS "uid_audit_event_request_69fae3" ON "audit_events" ("request_id");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "uid_audit_event_request_69fae3";
        ALTER TABLE "audit_events" DROP COLUMN "limit";
        ALTER TABLE "audit_events" DROP COLUMN "client_request_id";
        CREATE INDEX IF NOT EXISTS "idx_audit_event_request_69fae3" ON "audit_events" ("request_id");"""


MODELS_STATE = (
    "eJztnVtzmzgUx7+Kxi/bzmQ7qXPd9slOnK43id1J3Mv0MowCsq0JliiIJt5uvvtKAowR4A"
    "DBDqa8tLGkg/HvLwtJ5+j4V2tGDWQ6rzoWPkfz1hvwq0XgDPE/lJod0IKWFZaLAgZvTNkU"
    "Wli7RXNZCG8cZkOd8fIxNB3Eiwzk6Da2GKZEtB4SBDrv+4BbADoGEDBEIGFvAXFNE5h4hp"
    "kDMJkiGzPApsiv/8N5Ja5vUJ2/ASaTp1/KJfiHizRGJ4jX2fyCX7+2vBaiWoL4/p3/hYmB"
    "7pEjGoiX1q02xsg0IriwIWxkucbmlizrE3YmG4r7vtF0arozEja25mxKyaI19t52ggiyIU"
    "Pi8sx2BUDxaXzWAVPv3sMm3i0u2RhoDF1TyCCsvRsIy1qaNhiOtOveSNNaMYkCiyXUfpFO"
    "iZCX36ojP/1E3MKf7df7R/vHe4f7x7yJvM1FydGD99YhGM9Q4hmMWg+yHjLotZCMQ6i2Nc"
    "tB1W/9ONYA4hJXn9oCa9Ak5Br25q0BG4JkSSC7eJLKktWO5V/t9t7eUXt37/D4YP/o6OB4"
    "dwE1XrWKbrf/TgDmDSgf6LwRME58Bu85TqK7to08ahl7cdywRiKU1qENiM05H7pvEXHy9W"
    "zVskZ0N93FKWHTgirEbRsdiurAKINmIRVUy0aDohpA06R3yNDC2XFUhX+uh4NkDeKWigoG"
    "1hn4j89mnS1UYwVYgURceeY4P0xRMPjYuTr5u3P14rLz+WUU+ODkYtiVbKjDJra8irxAV9"
    "FBt5Fgo8GER+4pr2F4hpJ1iFqqGvimr4I/MigRm6o/9xeDf0BjSMy530tWSDPqX/auR53L"
    "9xF9Tjujnqhpy9K5UvriUNFscRHwqT/6G4iX4Mtw0FNlXLQbfWmJe4Iuoxqhdxo0ltYzQW"
    "lALaK6axkFVY9aNqpXRfWA0ZLs/t2Hqsv/Y3qfTKGdrHXQXlGZ09pGXcU6wURkwqb85evd"
    "3RXCBuMqb6WOq35V26uLjqWWjcb4Pg/h0KIcxs+7uRElfJgFsPptWOJ7qOK9RXNtCp1pHs"
    "DLNjXsxu2DgwyUeatUzLIuytlhkLkJUzJBuUfcmSTd53cFiY5ixEPrzfFuQZ3hn8G9ZGXe"
    "6pyM+h97b4Bn/Y2c9q873Yve6RtgYEfcj/GNXPU+Ds9FkY1+8mm/oW6pPs9XAd1bmD8XCj"
    "y/o5YlPL+3Z/5c8cd1fJbmd7kCKkctG5WrrLIJHaa5TiGdVdtG6UorTSeaZdOZxZK2nSg1"
    "ESQpOkctFZlvuGmtlO0OhxcRUbt9ZUNp8OGy2+MPTakmb4RZyj6TR01jzNQMOE/gnrrXl2"
    "BZo+2+8jxl0v+r5XLnRmwKQa3ctLwEqsJVPr5N9OuGTvYo4TNqIzwh52gem5QrWP3ohNHi"
    "QlsG+CHoQ0Fp+M2y4d0iviDatfjn558aeWPDSef6pHPaa0nON1C/vYO2oaUAdx04Sdgr6f"
    "pmZ+dXyITyM6Si/iAucSqcZzXCLeHRNl2CFsEZr5q1Z2oJJJyM4b+3eKcgdMY1MOv9RPLd"
    "4oE1Ye3OyuAa0U5DomHGAJtLxKAIqRAhMZQgvtTjGjjsDbib0h3+D2TiX2QjgBm449f1Cs"
    "UrnU8RdsCU3okXiGtlxINuyr98QiDOU8JuVnm8ahZ5sxEv14r4HE/6xKdl+iZW1Kp2O4WH"
    "+xm2Rw73U7dHRJXi1DIx/xppxWgnGheCXrWZ35qpBwvMPAvYwGYzjqRN9vE6LVyfZ47/+N"
    "dn+0I3o96MXEBDg2YZmowzv/8talW/Qb58z4Pj2mOo53IjL5nU0AV3nIHwcSrgY5XvjM/o"
    "aa75SmhRQ7p77Qx499qpfEWVsiEIWS4PctC+hnDbu/tZeq9olu4/lpVqnCtflOfqwoFB/U"
    "bgtXjoxXYLIrlGiSWT+kFeSzRPWhhE6gQtNfLh993Sjvo5+ZJAn2uzBKZnJoUpVKNmCtmx"
    "sNu+3ruC2+nwQ/eiB95f9U76130/4HexGJSVUZfXVa9zoS7E2fgmL+Ylm4ZxBsaBdzDlEM"
    "GjXsWnHSEoNFbsbslAoXNCJhJ3kR9vom2DOH4CRrDRkMPwTCKIEV4ZjpBkXiwmoRDlRcnW"
    "RiX4e8zYKrAx7RnVbxJX/oa06yBbg5PE46TpmKNW9eN88DrLmpq3SiUt65SAVNumdh7KC4"
    "P6AS6/I8vEDHnoLgzqR7ecHaFYrE16UMg6Ix7ey9ngBZ20EgIewsqdVfEO/ozSpJOM4Q6d"
    "IAIB3FBjDiAxeIFjcegi38c9A7fIYmBMbQBlohAmghGoxbsLwGQHuIRhE4Rx5PGAh3W8QR"
    "Py0IQ8lL73WqeYh037E6uGt+xFaHMuumYnZLOciw6GHfHcius+4s+u1cNVYFcLZ9EqXXuf"
    "RxFJY6kIFrJeDAfvguZqfoIHBb43R9DEHCEffcWwwV8Af4XOFFbs2bIlA1xqKFdFFjv+2Y"
    "OElU54KiF9mePFk2Ve4uiuw+gM2SLoWiQynPDedgfnbwE0TSCyHIr8i8DhE1AkX3q5D5PW"
    "Mk+4UsmLlt9lxdKkR6wm2CY9YmvDy+omPeKGOnSTHrECXbxJj1gJHZr0iM+vQZMeMfdSrE"
    "mP2GwDRto16REb1bcnPWKFDuRuNJz6N8wqp24yZdKk9JNcz5yN6DeN/Hv+fESFwB+td3Zd"
    "bt6cLAlegp/fUbp9jvwu4Q/9bNkjPDW3SzR2skmAkwhpnR6SJWIJXpIoz3RPiZROMxYNH/"
    "WWfJLxVwTJYCyRTZC/kK/5OANeYCLdHjeuMUEMiGkr+JdXvoz7Sp5wncSflrr1vl7cOvaz"
    "Usu/O7Wob6K/Khf9JbSJ4RdLqLTN1KTwici6aXvHksSjSHzdEwuDkLEkObfelq1qc95lw5"
    "tuj5zpWoW/vse6NqxBhsNfq3So9/mvDWtRwZDSrXYyNqlSy6IaW/I1qVLXkipVGQ1KoFq7"
    "VbNKNRwD82afXefKsoNsrE9bSWlVvZqdlSlVwzaPLSbTeTbBcNUKhvuJbMffv8nq8VgyqU"
    "WI9QZS9YgvVQ7CfvMa0l2LU4m/I0sMh0uPj1gyeVJgRNVobyIy4lkDyR/+B3otjKg="
)
