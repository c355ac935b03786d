// rotbench's libtorch shim: what tch 0.26 does not expose.
//
// Loads a TorchScript module, runs torch.jit.freeze and
// torch.jit.optimize_for_inference on it inside this process (an optimized
// module cannot be saved and reloaded), and runs forward on tch tensors
// (tch's C_tensor is a heap-allocated torch::Tensor*). Every C++ exception is
// caught here and returned as a message: nothing may unwind into Rust.
//
// At load it also records, before anything changes the module, what could make
// results mislead: the modules whose code runs an op in training mode (a
// constant `train`/`training` = true, as torch.jit.trace bakes in when a model
// is traced without .eval()), and the type forward declares it returns.
#include <ATen/Version.h>
#include <torch/script.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace {
char *dup_message(const std::string &s) {
  char *out = static_cast<char *>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

// Ops in `block` (and its sub-blocks) whose `train` or `training` argument is a
// constant true: dropout in all its forms, batch_norm, rrelu, ... A scripted
// module reads self.training instead (not a constant), which eval() turns off.
void training_ops(torch::jit::Block *block, std::vector<std::string> &ops) {
  for (torch::jit::Node *node : block->nodes()) {
    for (torch::jit::Block *sub : node->blocks()) training_ops(sub, ops);
    if (!node->kind().is_aten()) continue;
    const c10::FunctionSchema *schema = node->maybeSchema();
    if (!schema) continue;
    const auto &args = schema->arguments();
    for (size_t i = 0; i < args.size() && i < node->inputs().size(); ++i) {
      if (args[i].name() != "train" && args[i].name() != "training") continue;
      std::optional<c10::IValue> v = torch::jit::toIValue(node->input(i));
      if (v && v->isBool() && v->toBool()) {
        std::string op = node->kind().toUnqualString();
        if (!op.empty() && op.back() == '_') op.pop_back();  // dropout_ -> dropout
        ops.push_back(op);
      }
    }
  }
}

// One line per (module, op) that runs in training mode: "NAME\tOP", NAME empty
// for the top-level module.
std::string training_report(const torch::jit::Module &m) {
  std::string out;
  for (const auto &named : m.named_modules()) {
    std::vector<std::string> ops;
    for (const auto &method : named.value.get_methods()) {
      training_ops(method.graph()->block(), ops);
    }
    std::vector<std::string> seen;
    for (const auto &op : ops) {
      if (std::find(seen.begin(), seen.end(), op) != seen.end()) continue;
      seen.push_back(op);
      out += named.name + "\t" + op + "\n";
    }
  }
  return out;
}

// The modules whose training flag is set, one name a line (empty: the top level).
std::string training_flags(const torch::jit::Module &m) {
  std::string out;
  for (const auto &named : m.named_modules()) {
    if (named.value.is_training()) out += named.name + "\n";
  }
  return out;
}

// forward's declared return type: "KIND\tTYPE" on the first line (KIND: tensor,
// tuple, dict, list or other), then one line per tuple element type.
std::string output_type(const torch::jit::Module &m) {
  const auto &returns = m.get_method("forward").function().getSchema().returns();
  if (returns.size() != 1) return "other\t" + std::to_string(returns.size()) + " values\n";
  c10::TypePtr t = returns[0].type();
  std::string out;
  switch (t->kind()) {
    case c10::TypeKind::TensorType:
      out = "tensor";
      break;
    case c10::TypeKind::TupleType:
      out = "tuple";
      break;
    case c10::TypeKind::DictType:
      out = "dict";
      break;
    case c10::TypeKind::ListType:
      out = "list";
      break;
    default:
      out = "other";
  }
  out += "\t" + t->annotation_str() + "\n";
  if (auto tuple = t->cast<c10::TupleType>()) {
    for (const auto &e : tuple->elements()) out += e->annotation_str() + "\n";
  }
  return out;
}

// What an IValue is, in words, for messages.
std::string what(const c10::IValue &v) {
  if (v.isTensor()) return "a tensor";
  if (v.isTuple()) return "a tuple of " + std::to_string(v.toTupleRef().elements().size()) + " elements";
  if (v.isGenericDict()) return "a dict";
  if (v.isList()) return "a list of " + std::to_string(v.toListRef().size()) + " elements";
  if (v.isNone()) return "None";
  return "a value of type " + v.type()->annotation_str();
}

std::string dict_keys(const c10::impl::GenericDict &d) {
  std::vector<std::string> keys;
  for (const auto &e : d) {
    keys.push_back(e.key().isString() ? "`" + e.key().toStringRef() + "`" : e.key().tagKind());
  }
  std::sort(keys.begin(), keys.end());
  std::string out;
  for (size_t i = 0; i < keys.size(); ++i) out += (i ? ", " : "") + keys[i];
  return out.empty() ? "(none)" : out;
}

// The logits in forward's output: the output itself, element `index` of a tuple
// or list (index >= 0), or the value under `key` of a dict (key non-null).
// Throws std::runtime_error with the reason when there is none.
torch::Tensor select_output(const c10::IValue &out, int64_t index, const char *key) {
  const std::string pick_index = "pick the logits with --output-index N (or \"output_index\" in the sidecar)";
  const std::string pick_key = "pick the logits with --output-key NAME (or \"output_key\" in the sidecar)";
  c10::IValue chosen = out;
  std::string where = "forward's output";
  if (key) {
    if (!out.isGenericDict())
      throw std::runtime_error("an output key `" + std::string(key) + "` is set, but forward returned " +
                               what(out) + ", not a dict" +
                               (out.isTuple() || out.isList() ? "; " + pick_index : ""));
    const auto dict = out.toGenericDict();
    auto it = dict.find(c10::IValue(std::string(key)));
    if (it == dict.end())
      throw std::runtime_error("forward returned a dict without the key `" + std::string(key) +
                               "`; its keys are " + dict_keys(dict));
    chosen = it->value();
    where = "the value under `" + std::string(key) + "`";
  } else if (index >= 0) {
    std::vector<c10::IValue> elements;
    if (out.isTuple()) {
      const auto &e = out.toTupleRef().elements();
      elements.assign(e.begin(), e.end());
    } else if (out.isList()) {
      const auto l = out.toListRef();
      elements.assign(l.begin(), l.end());
    } else {
      throw std::runtime_error("an output index " + std::to_string(index) + " is set, but forward returned " +
                               what(out) + ", not a tuple" +
                               (out.isGenericDict() ? "; " + pick_key + " (its keys are " +
                                                          dict_keys(out.toGenericDict()) + ")"
                                                    : ""));
    }
    if (index >= static_cast<int64_t>(elements.size()))
      throw std::runtime_error("output index " + std::to_string(index) + " is out of range: forward returned " +
                               what(out) +
                               (elements.empty() ? "" : " (indices 0 to " + std::to_string(elements.size() - 1) + ")"));
    chosen = elements[index];
    where = "element " + std::to_string(index) + " of " + what(out);
  } else if (out.isGenericDict()) {
    throw std::runtime_error("forward returned a dict with keys " + dict_keys(out.toGenericDict()) + "; " + pick_key);
  } else if (out.isTuple() || out.isList()) {
    throw std::runtime_error("forward returned " + what(out) + "; " + pick_index);
  }
  if (!chosen.isTensor())
    throw std::runtime_error(where + " is " + what(chosen) + ", not a tensor of logits" +
                             (where == "forward's output" ? "" : "; pick another"));
  return chosen.toTensor();
}
}  // namespace

extern "C" {

struct rb_module {
  torch::jit::Module module;
  std::string training;
  std::string output_type;
  std::string training_flags;
};

// device_kind: 0 cpu, 1 cuda. optimize: 0 plain (eval only), 1 freeze + optimize_for_inference.
// The module runs as saved apart from its training flags, which eval() clears
// (freeze needs that); ops traced in training mode stay in training mode.
rb_module *rb_load(const char *path, int device_kind, int device_index, int optimize, char **err) {
  *err = nullptr;
  try {
    c10::Device device = device_kind == 1 ? c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device_index))
                                          : c10::Device(c10::kCPU);
    torch::jit::Module m = torch::jit::load(std::string(path), device);
    std::string training = training_report(m);
    std::string returns = output_type(m);
    std::string flags = training_flags(m);
    m.eval();
    if (optimize) {
      torch::jit::Module frozen = torch::jit::freeze(m);
      m = torch::jit::optimize_for_inference(frozen);
    }
    return new rb_module{std::move(m), std::move(training), std::move(returns), std::move(flags)};
  } catch (const std::exception &e) {
    *err = dup_message(e.what());
  } catch (...) {
    *err = dup_message("unknown C++ exception");
  }
  return nullptr;
}

// What rb_load recorded: 0 the training-mode report, 1 forward's return type,
// 2 the modules saved with their training flag set. A new malloc'd string (free
// it with rb_free_message).
char *rb_info(rb_module *m, int what) {
  return dup_message(what == 0 ? m->training : what == 1 ? m->output_type : m->training_flags);
}

// Returns a new torch::Tensor* (owned by the caller, i.e. tch) or null with *err
// set and *err_kind 1 (forward raised) or 2 (its output holds no tensor where
// `index` (>= 0) or `key` (non-null) says).
torch::Tensor *rb_forward(rb_module *m, const torch::Tensor *input, int64_t index, const char *key,
                          int *err_kind, char **err) {
  *err = nullptr;
  *err_kind = 0;
  c10::IValue out;
  try {
    torch::NoGradGuard no_grad;
    std::vector<torch::jit::IValue> inputs{*input};
    out = m->module.forward(inputs);
  } catch (const std::exception &e) {
    *err_kind = 1;
    *err = dup_message(e.what());
    return nullptr;
  } catch (...) {
    *err_kind = 1;
    *err = dup_message("unknown C++ exception");
    return nullptr;
  }
  try {
    return new torch::Tensor(select_output(out, index, key));
  } catch (const std::exception &e) {
    *err = dup_message(e.what());
  } catch (...) {
    *err = dup_message("unknown C++ exception");
  }
  *err_kind = 2;
  return nullptr;
}

void rb_free(rb_module *m) { delete m; }

void rb_free_message(char *s) { std::free(s); }

// The loaded libtorch's own build report (at::show_config(), as
// torch.__config__.show() prints it), whose build settings name its
// TORCH_VERSION. A new malloc'd string (free it with rb_free_message).
char *rb_show_config() {
  try {
    return dup_message(at::show_config());
  } catch (...) {
    return dup_message("");
  }
}

}  // extern "C"
