"""The Optimize page: a wizard that prunes and quantizes a model and reports what it cost."""
