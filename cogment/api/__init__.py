"""The Cogment wire protocol: .proto files and the modules grpcio-tools generates from them."""
