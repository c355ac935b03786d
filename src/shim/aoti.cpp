// rotbench's AOTInductor shim: torch.export packages (.pt2) through libtorch's own
// loader, torch::inductor::AOTIModelPackageLoader (exported by libtorch_cpu.so, so
// no new native dependency). As in optimized.cpp, every C++ exception is caught
// and returned as a message: nothing may unwind into Rust.
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {
char *dup_text(const std::string &s) {
  char *out = static_cast<char *>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}
}  // namespace

extern "C" {

struct rb_aoti {
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
};

// The package's metadata (device, compile settings, anything the exporter added)
// as "key\tvalue\n" lines, read without loading the model; null with *err set
// when the file is not a package libtorch can read.
char *rb_aoti_metadata(const char *path, char **err) {
  *err = nullptr;
  try {
    auto meta = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(std::string(path), "model");
    // One "key\tvalue\n" line per entry; backslash, tab and newline inside keys
    // and values are escaped as \\, \t and \n (an embedded spec is multi-line JSON).
    auto escape = [](const std::string &v) {
      std::string e;
      for (char c : v) {
        if (c == '\\') e += "\\\\";
        else if (c == '\t') e += "\\t";
        else if (c == '\n') e += "\\n";
        else e += c;
      }
      return e;
    };
    std::string out;
    for (const auto &kv : meta) out += escape(kv.first) + "\t" + escape(kv.second) + "\n";
    return dup_text(out);
  } catch (const std::exception &e) {
    *err = dup_text(e.what());
  } catch (...) {
    *err = dup_text("unknown C++ exception");
  }
  return nullptr;
}

// device_index: -1 for a CPU package, N for cuda:N.
rb_aoti *rb_aoti_load(const char *path, int device_index, char **err) {
  *err = nullptr;
  try {
    auto loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
        std::string(path), "model", false, 1, static_cast<c10::DeviceIndex>(device_index));
    return new rb_aoti{std::move(loader)};
  } catch (const std::exception &e) {
    *err = dup_text(e.what());
  } catch (...) {
    *err = dup_text("unknown C++ exception");
  }
  return nullptr;
}

// The first output for one input; a new torch::Tensor* owned by the caller (tch).
at::Tensor *rb_aoti_run(rb_aoti *m, const at::Tensor *input, char **err) {
  *err = nullptr;
  try {
    c10::NoGradGuard no_grad;
    std::vector<at::Tensor> inputs{*input};
    std::vector<at::Tensor> out = m->loader->run(inputs);
    if (out.empty()) throw std::runtime_error("the package returned no outputs");
    return new at::Tensor(out[0]);
  } catch (const std::exception &e) {
    *err = dup_text(e.what());
  } catch (...) {
    *err = dup_text("unknown C++ exception");
  }
  return nullptr;
}

void rb_aoti_free(rb_aoti *m) { delete m; }

}  // extern "C"
