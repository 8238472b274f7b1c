"""LangChain tools and the plain functions behind them: render, check, write."""
