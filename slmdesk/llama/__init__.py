"""The only package that imports llama-cpp-python: loading and generating, quantizing, scoring,
the CPU variant and version of the native library."""
