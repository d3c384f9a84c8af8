//! Writes the benchmark MLP (784-128-10, the MNIST shape) as ONNX.
fn main() {
    let out = std::env::args().nth(1).expect("usage: write-mlp OUT.onnx");
    std::fs::write(out, gradnet_runtime::generated::mlp(784, 128, 10, 7)).unwrap();
}
