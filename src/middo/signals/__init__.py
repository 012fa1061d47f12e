"""The three signals: complexity (loss), diversity (kNN), quality (judge)."""
