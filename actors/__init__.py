"""The Lark (Feishu) service built on :mod:`kernel`: Lark client, stores and the built-in jobs."""
