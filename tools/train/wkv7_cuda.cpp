// PyTorch binding for wkv7_cuda.cu (built at run time by torch.utils.cpp_extension.load).
#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

void wkv7_forward_launch(int B, int T, int H, const float* r, const float* w, const float* k,
    const float* v, const float* a, const float* b, const float* s0, float* y, float* sa,
    float* ckpt, float* s_out, cudaStream_t stream);
void wkv7_backward_launch(int B, int T, int H, const float* r, const float* w, const float* k,
    const float* v, const float* a, const float* b, const float* dy, const float* sa,
    const float* ckpt, float* dr, float* dw, float* dk, float* dv, float* da, float* db,
    cudaStream_t stream);

static const float* ptr_or_null(const c10::optional<torch::Tensor>& t) {
    return (t.has_value() && t->defined()) ? t->data_ptr<float>() : nullptr;
}
static float* mptr_or_null(const c10::optional<torch::Tensor>& t) {
    return (t.has_value() && t->defined()) ? t->data_ptr<float>() : nullptr;
}

// all [B,T,H,N] fp32 contiguous; s0, s_out [B,H,N,N]; ckpt [B,H,T/CHUNK,N,N]
void forward(torch::Tensor r, torch::Tensor w, torch::Tensor k, torch::Tensor v, torch::Tensor a,
             torch::Tensor b, c10::optional<torch::Tensor> s0, torch::Tensor y,
             c10::optional<torch::Tensor> sa, c10::optional<torch::Tensor> ckpt,
             c10::optional<torch::Tensor> s_out) {
    const int B = r.size(0), T = r.size(1), H = r.size(2);
    wkv7_forward_launch(B, T, H, r.data_ptr<float>(), w.data_ptr<float>(), k.data_ptr<float>(),
                        v.data_ptr<float>(), a.data_ptr<float>(), b.data_ptr<float>(),
                        ptr_or_null(s0), y.data_ptr<float>(), mptr_or_null(sa), mptr_or_null(ckpt),
                        mptr_or_null(s_out), c10::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void backward(torch::Tensor r, torch::Tensor w, torch::Tensor k, torch::Tensor v, torch::Tensor a,
              torch::Tensor b, torch::Tensor dy, torch::Tensor sa, torch::Tensor ckpt,
              torch::Tensor dr, torch::Tensor dw, torch::Tensor dk, torch::Tensor dv,
              torch::Tensor da, torch::Tensor db) {
    const int B = r.size(0), T = r.size(1), H = r.size(2);
    wkv7_backward_launch(B, T, H, r.data_ptr<float>(), w.data_ptr<float>(), k.data_ptr<float>(),
                         v.data_ptr<float>(), a.data_ptr<float>(), b.data_ptr<float>(),
                         dy.data_ptr<float>(), sa.data_ptr<float>(), ckpt.data_ptr<float>(),
                         dr.data_ptr<float>(), dw.data_ptr<float>(), dk.data_ptr<float>(),
                         dv.data_ptr<float>(), da.data_ptr<float>(), db.data_ptr<float>(),
                         c10::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("forward", &forward, "WKV7 forward");
    m.def("backward", &backward, "WKV7 backward");
}
