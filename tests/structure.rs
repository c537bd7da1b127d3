//! Issue 8's structural acceptance, measured precisely over `src/`: production files of at most
//! 800 lines, production functions of at most 120 lines, no pair of files that import each other
//! (other than a module and its own descendants), and a `//!` line at the top of every file.
//!
//! Every file is parsed with `syn`, and sizes come from the parsed items' spans (proc-macro2's
//! `span-locations`), so braces inside strings or comments cannot fool the count. Test code is
//! outside the limits: `#[cfg(test)]` items, `#[test]` functions, and files that are only compiled
//! for tests (`tests.rs`, `*_tests.rs`, or reached only through `#[cfg(test)] mod name;`).
//! Every violation is listed at once, as `file:line`, name and size.
//!
//! A file references another when its production code names a module in that file through a
//! `use` tree or a path (`crate::a::b`, `super::x`, `self::x`, a child module's name, or
//! `knockplay::…` from the binary), also inside macro input; the path counts for the deepest
//! module that is a file. A name reached through a re-export counts for the re-exporting file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{Attribute, ImplItem, Item, Meta, Token, TraitItem, UseTree};

const MAX_FILE_LINES: usize = 800;
const MAX_FN_LINES: usize = 120;

/// The structural acceptance of issue 8 over this crate's `src/`.
#[test]
fn src_meets_the_structure_limits() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let tree = match SourceTree::load(&src) {
        Ok(t) => t,
        Err(e) => panic!("cannot read {}: {e}", src.display()),
    };
    let report = tree.check();
    assert!(report.is_empty(), "\n{}", report.render());
}

// ---------------------------------------------------------------------------------------------
// Loading: every .rs file under src/, parsed, and placed in the module tree.
// ---------------------------------------------------------------------------------------------

/// Which crate of the package a module belongs to: `src/lib.rs` or `src/main.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Krate {
    Lib,
    Bin,
}

/// Where a file sits in the module tree.
#[derive(Debug, Clone)]
struct Placement {
    krate: Krate,
    module: Vec<String>,
    /// Only compiled for tests (declared under `#[cfg(test)]`, or inside such a module).
    test_only: bool,
}

struct SourceFile {
    /// Path relative to the package root, as printed in reports (`src/playbook/parse.rs`).
    shown: String,
    text: String,
    ast: syn::File,
    placement: Option<Placement>,
}

struct SourceTree {
    files: BTreeMap<PathBuf, SourceFile>,
    /// Every module (file or inline) → the file holding it.
    modules: BTreeMap<(Krate, Vec<String>), PathBuf>,
}

impl SourceTree {
    fn load(src: &Path) -> Result<SourceTree, String> {
        let mut paths = Vec::new();
        collect_rs_files(src, &mut paths)?;
        let base = src.parent().unwrap_or(src);
        let mut files = BTreeMap::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{path:?}: {e}"))?;
            let ast = syn::parse_file(&text).map_err(|e| format!("{path:?}: {e}"))?;
            let shown = path
                .strip_prefix(base)
                .unwrap_or(&path)
                .display()
                .to_string();
            let file = SourceFile {
                shown,
                text,
                ast,
                placement: None,
            };
            files.insert(path, file);
        }
        let mut tree = SourceTree {
            files,
            modules: BTreeMap::new(),
        };
        for (root, krate) in [("lib.rs", Krate::Lib), ("main.rs", Krate::Bin)] {
            let path = src.join(root);
            if tree.files.contains_key(&path) {
                tree.place(&path, krate, Vec::new(), false);
            }
        }
        Ok(tree)
    }

    /// Record `path` as module `module` of `krate`, then follow its `mod` declarations.
    fn place(&mut self, path: &Path, krate: Krate, module: Vec<String>, test_only: bool) {
        let Some(file) = self.files.get_mut(path) else {
            return;
        };
        let test_only = test_only || is_test_file_name(path);
        match &mut file.placement {
            // Declared twice: it is production code if either declaration is.
            Some(p) => {
                p.test_only &= test_only;
                return;
            }
            None => {
                file.placement = Some(Placement {
                    krate,
                    module: module.clone(),
                    test_only,
                })
            }
        }
        self.modules
            .insert((krate, module.clone()), path.to_path_buf());
        let mut declared = Vec::new();
        let items = file.ast.items.clone();
        let file_dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let child_dir = if is_mod_rs(path) {
            file_dir.clone()
        } else {
            file_dir.join(file_stem(path))
        };
        let scope = ModScope {
            module,
            child_dir,
            path_attr_dir: file_dir,
            test_only,
        };
        declared_modules(&items, &scope, &mut declared);
        for decl in declared {
            match decl {
                Declared::Inline(module) => {
                    self.modules.insert((krate, module), path.to_path_buf());
                }
                Declared::File {
                    module,
                    candidates,
                    test_only,
                } => {
                    if let Some(child) = candidates.into_iter().find(|c| self.files.contains_key(c))
                    {
                        self.place(&child, krate, module, test_only);
                    }
                }
            }
        }
    }
}

fn collect_rs_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{dir:?}: {e}"))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_rs_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `lib.rs`, `main.rs` and `mod.rs` keep their child modules beside them, not in a folder of
/// their own name.
fn is_mod_rs(path: &Path) -> bool {
    matches!(file_stem(path).as_str(), "lib" | "main" | "mod")
}

fn is_test_file_name(path: &Path) -> bool {
    let stem = file_stem(path);
    stem == "tests" || stem.ends_with("_tests")
}

/// Where `mod` declarations found in one scope (a file, or an inline module in it) lead.
struct ModScope {
    module: Vec<String>,
    /// Where `mod name;` looks for `name.rs` / `name/mod.rs`.
    child_dir: PathBuf,
    /// What `#[path = "..."]` is relative to.
    path_attr_dir: PathBuf,
    test_only: bool,
}

enum Declared {
    Inline(Vec<String>),
    File {
        module: Vec<String>,
        candidates: Vec<PathBuf>,
        test_only: bool,
    },
}

fn declared_modules(items: &[Item], scope: &ModScope, out: &mut Vec<Declared>) {
    for item in items {
        let Item::Mod(m) = item else { continue };
        let name = m.ident.unraw().to_string();
        let mut module = scope.module.clone();
        module.push(name.clone());
        let test_only = scope.test_only || is_test_code(&m.attrs);
        let path_attr = path_attribute(&m.attrs);
        match &m.content {
            Some((_, inner)) => {
                out.push(Declared::Inline(module.clone()));
                let dir = match &path_attr {
                    Some(p) => scope.path_attr_dir.join(p),
                    None => scope.child_dir.join(&name),
                };
                let inner_scope = ModScope {
                    module,
                    child_dir: dir.clone(),
                    path_attr_dir: dir,
                    test_only,
                };
                declared_modules(inner, &inner_scope, out);
            }
            None => {
                let candidates = match path_attr {
                    Some(p) => vec![scope.path_attr_dir.join(p)],
                    None => vec![
                        scope.child_dir.join(format!("{name}.rs")),
                        scope.child_dir.join(&name).join("mod.rs"),
                    ],
                };
                out.push(Declared::File {
                    module,
                    candidates,
                    test_only,
                });
            }
        }
    }
}

fn path_attribute(attrs: &[Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

// ---------------------------------------------------------------------------------------------
// What counts as test code.
// ---------------------------------------------------------------------------------------------

/// `#[cfg(...)]` that can only hold in test builds, or a `#[test]`-style attribute.
fn is_test_code(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| {
        let path = a.path();
        if path.is_ident("cfg") {
            return a.parse_args::<Meta>().is_ok_and(|m| cfg_requires_test(&m));
        }
        // `#[test]`, `#[tokio::test]`, ...
        path.segments.last().is_some_and(|s| s.ident == "test")
    })
}

/// Whether a cfg predicate is true only when `test` is set.
fn cfg_requires_test(meta: &Meta) -> bool {
    match meta {
        Meta::Path(p) => p.is_ident("test"),
        Meta::NameValue(_) => false,
        Meta::List(list) => {
            let Ok(args) = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
            else {
                return false;
            };
            if list.path.is_ident("all") {
                args.iter().any(cfg_requires_test)
            } else if list.path.is_ident("any") {
                !args.is_empty() && args.iter().all(cfg_requires_test)
            } else {
                false
            }
        }
    }
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

fn impl_item_attrs(item: &ImplItem) -> &[Attribute] {
    match item {
        ImplItem::Const(i) => &i.attrs,
        ImplItem::Fn(i) => &i.attrs,
        ImplItem::Type(i) => &i.attrs,
        ImplItem::Macro(i) => &i.attrs,
        _ => &[],
    }
}

fn trait_item_attrs(item: &TraitItem) -> &[Attribute] {
    match item {
        TraitItem::Const(i) => &i.attrs,
        TraitItem::Fn(i) => &i.attrs,
        TraitItem::Type(i) => &i.attrs,
        TraitItem::Macro(i) => &i.attrs,
        _ => &[],
    }
}

// ---------------------------------------------------------------------------------------------
// One file: production lines, function sizes, and the paths it references.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct FnSize {
    line: usize,
    name: String,
    lines: usize,
}

/// A path to another module, as written at `line` inside module `from`.
#[derive(Debug)]
struct PathRef {
    line: usize,
    from: Vec<String>,
    segments: Vec<String>,
}

#[derive(Default)]
struct FileFacts {
    /// Lines covered by test items (`#[cfg(test)]`, `#[test]`).
    test_lines: BTreeSet<usize>,
    fns: Vec<FnSize>,
    refs: Vec<PathRef>,
}

/// Walks the production items of one file; test items only mark their lines.
struct Walker {
    facts: FileFacts,
    /// Absolute module path of the code being walked (file module + inline modules).
    module: Vec<String>,
    /// Enclosing impl types and functions, for readable function names.
    scope: Vec<String>,
}

fn analyze(ast: &syn::File, module: &[String]) -> FileFacts {
    let mut walker = Walker {
        facts: FileFacts::default(),
        module: module.to_vec(),
        scope: Vec::new(),
    };
    walker.visit_file(ast);
    walker.facts
}

fn line_span(node: &impl Spanned) -> (usize, usize) {
    let span = node.span();
    (span.start().line, span.end().line)
}

impl Walker {
    /// True (and the lines are marked) when the item is test code.
    fn skip_test(&mut self, attrs: &[Attribute], node: &impl Spanned) -> bool {
        if !is_test_code(attrs) {
            return false;
        }
        let (start, end) = line_span(node);
        self.facts.test_lines.extend(start..=end);
        true
    }

    fn measure_fn(&mut self, sig: &syn::Signature, body: &syn::Block) {
        let start = sig.span().start().line;
        let end = body.brace_token.span.close().end().line;
        let mut name = self.scope.clone();
        name.push(sig.ident.to_string());
        self.facts.fns.push(FnSize {
            line: start,
            name: name.join("::"),
            lines: end + 1 - start,
        });
    }

    fn add_ref(&mut self, line: usize, segments: Vec<String>) {
        if !segments.is_empty() {
            self.facts.refs.push(PathRef {
                line,
                from: self.module.clone(),
                segments,
            });
        }
    }

    fn in_scope(&mut self, name: String, walk: impl FnOnce(&mut Self)) {
        self.scope.push(name);
        walk(self);
        self.scope.pop();
    }
}

impl<'ast> Visit<'ast> for Walker {
    fn visit_item(&mut self, item: &'ast Item) {
        if self.skip_test(item_attrs(item), item) {
            return;
        }
        match item {
            Item::Mod(m) if m.content.is_some() => {
                self.module.push(m.ident.unraw().to_string());
                visit::visit_item_mod(self, m);
                self.module.pop();
            }
            Item::Impl(i) => {
                let name = match &*i.self_ty {
                    syn::Type::Path(p) => p
                        .path
                        .segments
                        .last()
                        .map(|s| s.ident.to_string())
                        .unwrap_or_default(),
                    _ => "impl".to_string(),
                };
                self.in_scope(name, |w| visit::visit_item_impl(w, i));
            }
            Item::Trait(t) => self.in_scope(t.ident.to_string(), |w| visit::visit_item_trait(w, t)),
            _ => visit::visit_item(self, item),
        }
    }

    fn visit_impl_item(&mut self, item: &'ast ImplItem) {
        if !self.skip_test(impl_item_attrs(item), item) {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_trait_item(&mut self, item: &'ast TraitItem) {
        if !self.skip_test(trait_item_attrs(item), item) {
            visit::visit_trait_item(self, item);
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.measure_fn(&f.sig, &f.block);
        self.in_scope(f.sig.ident.to_string(), |w| visit::visit_item_fn(w, f));
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.measure_fn(&f.sig, &f.block);
        self.in_scope(f.sig.ident.to_string(), |w| visit::visit_impl_item_fn(w, f));
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(body) = &f.default {
            self.measure_fn(&f.sig, body);
        }
        self.in_scope(f.sig.ident.to_string(), |w| {
            visit::visit_trait_item_fn(w, f)
        });
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        expand_use_tree(&u.tree, &mut Vec::new(), &mut paths);
        for (line, segments) in paths {
            self.add_ref(line, segments);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.add_ref(path.span().start().line, segments);
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        for (line, segments) in paths_in_tokens(mac.tokens.clone()) {
            self.add_ref(line, segments);
        }
        visit::visit_macro(self, mac);
    }
}

/// `use a::{b, c::{self, D}}` → `a::b`, `a::c`, `a::c::D` (each with its line).
fn expand_use_tree(tree: &UseTree, prefix: &mut Vec<String>, out: &mut Vec<(usize, Vec<String>)>) {
    let line = tree.span().start().line;
    match tree {
        UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            expand_use_tree(&p.tree, prefix, out);
            prefix.pop();
        }
        UseTree::Name(n) if n.ident == "self" => out.push((line, prefix.clone())),
        UseTree::Name(n) => out.push((line, with(prefix, n.ident.to_string()))),
        UseTree::Rename(r) => out.push((line, with(prefix, r.ident.to_string()))),
        UseTree::Glob(_) => out.push((line, prefix.clone())),
        UseTree::Group(g) => {
            for t in &g.items {
                expand_use_tree(t, prefix, out);
            }
        }
    }
}

fn with(prefix: &[String], last: String) -> Vec<String> {
    let mut v = prefix.to_vec();
    v.push(last);
    v
}

/// Paths that start with `crate`, `super` or `self` inside macro input (which syn leaves as
/// tokens): `crate::a::b` → `["crate", "a", "b"]`.
fn paths_in_tokens(tokens: TokenStream) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < trees.len() {
        match &trees[i] {
            TokenTree::Group(g) => {
                out.extend(paths_in_tokens(g.stream()));
                i += 1;
            }
            TokenTree::Ident(id)
                if ["crate", "super", "self"].contains(&id.to_string().as_str()) =>
            {
                let line = id.span().start().line;
                let mut segments = vec![id.to_string()];
                let mut j = i + 1;
                while let (
                    Some(TokenTree::Punct(a)),
                    Some(TokenTree::Punct(b)),
                    Some(TokenTree::Ident(next)),
                ) = (trees.get(j), trees.get(j + 1), trees.get(j + 2))
                {
                    if a.as_char() != ':' || b.as_char() != ':' {
                        break;
                    }
                    segments.push(next.to_string());
                    j += 3;
                }
                if segments.len() > 1 {
                    out.push((line, segments));
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Resolving references to files.
// ---------------------------------------------------------------------------------------------

/// The library's name as the binary spells it in paths (`knockplay::cli`).
fn lib_name() -> String {
    env!("CARGO_PKG_NAME").replace('-', "_")
}

impl SourceTree {
    /// The file holding the deepest module a path names, or `None` for paths outside this
    /// package (std, dependencies, local items).
    fn resolve(&self, krate: Krate, r: &PathRef) -> Option<&PathBuf> {
        let segs = &r.segments;
        let first = segs.first()?.as_str();
        let (krate, mut module, rest) = match first {
            "crate" => (krate, Vec::new(), &segs[1..]),
            "self" => (krate, r.from.clone(), &segs[1..]),
            "super" => {
                let mut module = r.from.clone();
                let supers = segs.iter().take_while(|s| *s == "super").count();
                for _ in 0..supers {
                    module.pop()?;
                }
                (krate, module, &segs[supers..])
            }
            name if krate == Krate::Bin && name == lib_name() => {
                (Krate::Lib, Vec::new(), &segs[1..])
            }
            // A bare first segment that names a child module of the current one.
            name if self
                .modules
                .contains_key(&(krate, with(&r.from, name.to_string()))) =>
            {
                (krate, r.from.clone(), &segs[..])
            }
            _ => return None,
        };
        module.extend(rest.iter().cloned());
        (0..=module.len())
            .rev()
            .find_map(|n| self.modules.get(&(krate, module[..n].to_vec())))
    }
}

// ---------------------------------------------------------------------------------------------
// The checks and their report.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Report {
    missing_doc: Vec<String>,
    long_files: Vec<String>,
    long_fns: Vec<String>,
    cycles: Vec<String>,
}

impl Report {
    fn is_empty(&self) -> bool {
        self.missing_doc.is_empty()
            && self.long_files.is_empty()
            && self.long_fns.is_empty()
            && self.cycles.is_empty()
    }

    fn render(&self) -> String {
        let sections = [
            (
                "files that do not start with a `//!` line",
                &self.missing_doc,
            ),
            (
                &*format!("production files over {MAX_FILE_LINES} lines (test items not counted)"),
                &self.long_files,
            ),
            (
                &*format!("production functions over {MAX_FN_LINES} lines"),
                &self.long_fns,
            ),
            (
                "files that import each other (neither is the other's ancestor module)",
                &self.cycles,
            ),
        ];
        let mut out = String::new();
        for (title, rows) in sections {
            if rows.is_empty() {
                continue;
            }
            out.push_str(&format!("{} {title}:\n", rows.len()));
            for row in rows {
                out.push_str(&format!("  {row}\n"));
            }
        }
        out
    }
}

impl SourceTree {
    fn check(&self) -> Report {
        let mut report = Report::default();
        // (from, to) → first line in `from` that references `to`.
        let mut edges: BTreeMap<(&PathBuf, &PathBuf), usize> = BTreeMap::new();
        for (path, file) in &self.files {
            if !file.text.trim_start_matches('\u{feff}').starts_with("//!") {
                report.missing_doc.push(format!("{}:1", file.shown));
            }
            let test_only =
                file.placement.as_ref().is_some_and(|p| p.test_only) || is_test_file_name(path);
            if test_only {
                continue;
            }
            let module = file.placement.as_ref().map(|p| p.module.clone());
            let facts = analyze(&file.ast, module.as_deref().unwrap_or(&[]));
            let total = file.text.lines().count();
            let production = total - facts.test_lines.iter().filter(|l| **l <= total).count();
            if production > MAX_FILE_LINES {
                report.long_files.push(format!(
                    "{}: {production} production lines ({total} in all)",
                    file.shown
                ));
            }
            for f in facts.fns.iter().filter(|f| f.lines > MAX_FN_LINES) {
                report.long_fns.push(format!(
                    "{}:{} {}: {} lines",
                    file.shown, f.line, f.name, f.lines
                ));
            }
            let Some(placement) = &file.placement else {
                continue;
            };
            for r in &facts.refs {
                if let Some(target) = self.resolve(placement.krate, r) {
                    if target != path {
                        edges.entry((path, target)).or_insert(r.line);
                    }
                }
            }
        }
        for (&(a, b), &line_ab) in &edges {
            let Some(&line_ba) = edges.get(&(b, a)) else {
                continue;
            };
            if a < b && !self.is_ancestor(a, b) && !self.is_ancestor(b, a) {
                let (fa, fb) = (&self.files[a], &self.files[b]);
                report.cycles.push(format!(
                    "{}:{line_ab} → {} and {}:{line_ba} → {}",
                    fa.shown, fb.shown, fb.shown, fa.shown
                ));
            }
        }
        report
    }

    /// Whether file `a`'s module encloses file `b`'s (a parent and its own child files).
    fn is_ancestor(&self, a: &Path, b: &Path) -> bool {
        let (Some(pa), Some(pb)) = (&self.files[a].placement, &self.files[b].placement) else {
            return false;
        };
        pa.krate == pb.krate && pb.module.starts_with(&pa.module)
    }
}

// ---------------------------------------------------------------------------------------------
// Tests of the checker itself, on small sources.
// ---------------------------------------------------------------------------------------------

fn parse(src: &str) -> syn::File {
    match syn::parse_file(src) {
        Ok(f) => f,
        Err(e) => panic!("test source does not parse: {e}"),
    }
}

#[test]
fn cfg_predicates_that_mean_test_only() {
    let cases = [
        ("#[cfg(test)]", true),
        ("#[cfg(all(test, unix))]", true),
        ("#[cfg(all(unix, feature = \"x\"))]", false),
        ("#[cfg(any(test, unix))]", false),
        ("#[cfg(any(test, all(test, unix)))]", true),
        ("#[cfg(not(test))]", false),
        ("#[cfg(unix)]", false),
        ("#[test]", true),
        ("#[tokio::test]", true),
        ("#[inline]", false),
    ];
    for (attr, want) in cases {
        let file = parse(&format!("{attr} fn f() {{}}"));
        let Item::Fn(f) = &file.items[0] else {
            panic!("{attr}: not a fn")
        };
        assert_eq!(is_test_code(&f.attrs), want, "{attr}");
    }
}

#[test]
fn functions_are_measured_from_signature_to_closing_brace() {
    let src = "//! x\n\
               /// doc lines do not count\n\
               fn outer() {\n\
                   fn inner() {\n\
                       let s = \"}}}}\";\n\
                   }\n\
               }\n\
               struct S;\n\
               impl S {\n\
                   pub fn method(&self) {}\n\
               }\n\
               trait T {\n\
                   fn required(&self);\n\
                   fn provided(&self) {\n\
                   }\n\
               }\n\
               #[cfg(test)]\n\
               mod tests {\n\
                   fn helper() {}\n\
               }\n\
               #[test]\n\
               fn a_test() {}\n";
    let facts = analyze(&parse(src), &[]);
    let sizes: Vec<(&str, usize, usize)> = facts
        .fns
        .iter()
        .map(|f| (f.name.as_str(), f.line, f.lines))
        .collect();
    assert_eq!(
        sizes,
        [
            ("outer", 3, 5),
            ("outer::inner", 4, 3),
            ("S::method", 10, 1),
            ("T::provided", 14, 2),
        ]
    );
    let test_lines: Vec<usize> = facts.test_lines.into_iter().collect();
    assert_eq!(test_lines, [17, 18, 19, 20, 21, 22]);
}

#[test]
fn use_trees_expand_to_one_path_each() {
    let file = parse("use super::{a::{self, B}, c::*, d as e};");
    let Item::Use(u) = &file.items[0] else {
        panic!("not a use")
    };
    let mut paths = Vec::new();
    expand_use_tree(&u.tree, &mut Vec::new(), &mut paths);
    let paths: Vec<String> = paths.into_iter().map(|(_, p)| p.join("::")).collect();
    assert_eq!(paths, ["super::a", "super::a::B", "super::c", "super::d"]);
}

#[test]
fn macro_input_paths_are_found() {
    let file = parse(
        "fn f() { matches!(x, crate::a::B { .. }); let y = self.z; format!(\"{}\", super::c::D); }",
    );
    let mut w = Walker {
        facts: FileFacts::default(),
        module: vec!["m".into()],
        scope: Vec::new(),
    };
    w.visit_file(&file);
    let paths: Vec<String> = w.facts.refs.iter().map(|r| r.segments.join("::")).collect();
    assert!(paths.contains(&"crate::a::B".to_string()), "{paths:?}");
    assert!(paths.contains(&"super::c::D".to_string()), "{paths:?}");
    // `self.z` is a value, not a module path.
    assert!(!paths.iter().any(|p| p.starts_with("self::")), "{paths:?}");
}

/// A small crate on disk: sibling cycle, parent/child references, a `#[path]` test file, an
/// inline module and a long function.
#[test]
fn a_small_tree_reports_each_kind_of_violation() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let src = dir.path().join("src");
    let long_body = "    let _ = 1;\n".repeat(MAX_FN_LINES);
    let files = [
        (
            "lib.rs",
            "//! root\nmod a;\nmod b;\nmod p;\nfn top() { a::f(); }\n".to_string(),
        ),
        (
            "a.rs",
            "//! a\nuse super::b::g;\npub fn f() {}\n".to_string(),
        ),
        ("b.rs", "//! b\npub fn g() { crate::a::f(); }\n".to_string()),
        (
            "p.rs",
            "//! p\nmod c;\nmod inline { pub fn h() {} }\npub fn k() { c::x(); }\n\
             #[cfg(test)]\n#[path = \"p_checks.rs\"]\nmod checks;\n"
                .to_string(),
        ),
        (
            "p/c.rs",
            format!("//! c\npub fn x() {{ super::inline::h(); }}\nfn long() {{\n{long_body}}}\n"),
        ),
        (
            "p_checks.rs",
            format!("fn untested_doc() {{\n{long_body}}}\n"),
        ),
    ];
    for (name, text) in &files {
        let path = src.join(name);
        if let Some(parent) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(parent) {
                panic!("{parent:?}: {e}");
            }
        }
        if let Err(e) = std::fs::write(&path, text) {
            panic!("{path:?}: {e}");
        }
    }
    let tree = match SourceTree::load(&src) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let checks = &tree.files[&src.join("p_checks.rs")];
    assert!(checks.placement.as_ref().is_some_and(|p| p.test_only));
    let report = tree.check();
    assert_eq!(report.missing_doc, ["src/p_checks.rs:1"]);
    assert_eq!(report.long_files, Vec::<String>::new());
    assert_eq!(
        report.long_fns,
        [format!("src/p/c.rs:3 long: {} lines", MAX_FN_LINES + 2)]
    );
    assert_eq!(
        report.cycles,
        ["src/a.rs:2 → src/b.rs and src/b.rs:2 → src/a.rs"]
    );
}
