//! Recipes: the declarative input.
