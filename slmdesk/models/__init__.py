"""What a model file is: GGUF reading and validation, memory estimate, quantization types, prompt
formats, the library of model files and the starter model. No Qt, no llama.cpp."""
