"""Development launchers: what `bin/run`, the tests and the benchmarks start around the app.

The embedded Redis (``embedded_redis``), the sandbox and daphne as child processes
(``sandbox_process``, ``daphne_process``) on the shared child-process and port helpers
(``local_server``, ``ports``), the `bin/run` stack (``stack``), and the harness tests and
benches share (``harness``, ``api_calls``, ``sdk_streams``). No product module imports this
package: production runs the Procfile's processes against real Redis and Alpaca.
"""
