// rotbench's libtorch shim: what tch 0.26 does not expose.
//
// Loads a TorchScript module, runs torch.jit.freeze and
// torch.jit.optimize_for_inference on it inside this process (an optimized
// module cannot be saved and reloaded), and runs forward on tch tensors
// (tch's C_tensor is a heap-allocated torch::Tensor*). Every C++ exception is
// caught here and returned as a message: nothing may unwind into Rust.
#include <torch/script.h>
#include <torch/csrc/jit/api/module.h>
#include <cstring>
#include <string>
#include <vector>

namespace {
char *dup_message(const std::string &s) {
  char *out = static_cast<char *>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}
}  // namespace

extern "C" {

struct rb_module {
  torch::jit::Module module;
};

// device_kind: 0 cpu, 1 cuda. optimize: 0 plain (eval only), 1 freeze + optimize_for_inference.
rb_module *rb_load(const char *path, int device_kind, int device_index, int optimize, char **err) {
  *err = nullptr;
  try {
    c10::Device device = device_kind == 1 ? c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device_index))
                                          : c10::Device(c10::kCPU);
    torch::jit::Module m = torch::jit::load(std::string(path), device);
    m.eval();
    if (optimize) {
      torch::jit::Module frozen = torch::jit::freeze(m);
      m = torch::jit::optimize_for_inference(frozen);
    }
    return new rb_module{std::move(m)};
  } catch (const std::exception &e) {
    *err = dup_message(e.what());
  } catch (...) {
    *err = dup_message("unknown C++ exception");
  }
  return nullptr;
}

// Returns a new torch::Tensor* (owned by the caller, i.e. tch) or null with *err set.
torch::Tensor *rb_forward(rb_module *m, const torch::Tensor *input, char **err) {
  *err = nullptr;
  try {
    torch::NoGradGuard no_grad;
    std::vector<torch::jit::IValue> inputs{*input};
    torch::jit::IValue out = m->module.forward(inputs);
    if (!out.isTensor()) {
      *err = dup_message("forward returned " + out.tagKind() + ", not a tensor");
      return nullptr;
    }
    return new torch::Tensor(out.toTensor());
  } catch (const std::exception &e) {
    *err = dup_message(e.what());
  } catch (...) {
    *err = dup_message("unknown C++ exception");
  }
  return nullptr;
}

void rb_free(rb_module *m) { delete m; }

void rb_free_message(char *s) { std::free(s); }

}  // extern "C"
