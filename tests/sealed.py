"""Reading the database as a dump or a backup would show it, to look for personal data in clear."""

import json

from sqlalchemy import inspect, text

from tests.conftest import Server


async def clear_text_leaks(server: Server, strings: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, string) for every stored value, in any table, that contains one of ``strings``."""
    found: list[tuple[str, str, str]] = []
    async with server.db.engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        for table in tables:
            result = await conn.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row):
                    if value is None:
                        continue
                    if isinstance(value, bytes | bytearray | memoryview):
                        stored = bytes(value).decode("latin-1")
                    elif isinstance(value, dict | list):
                        stored = json.dumps(value, ensure_ascii=False)
                    else:
                        stored = str(value)
                    found += [(table, column, s) for s in strings if s in stored]
    return found
