"""The FIX A-book venue: quickfix sessions to liquidity providers (``venue``), their
``[[lp]]`` configuration (``config``, importable without quickfix), and the project's LP
simulator (``lpsim``). quickfix is imported in this package only."""
