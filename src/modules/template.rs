//! `template`: render a local Jinja template with the task's variables (via
//! [`ModuleCtx::templater`]) and put the result in place exactly like `copy` with content.

use super::copy::{copy_file, not_found, CopyArgs, NewContent};
use super::util::{arg_choice, arg_err, basename, req_str};
use super::{Module, ModuleCtx, ModuleError, ModuleResult};
use crate::value::Vars;

pub struct Template;

impl Module for Template {
    fn name(&self) -> &'static str {
        "template"
    }
    fn params(&self) -> &'static [&'static str] {
        &[
            "src",
            "dest",
            "mode",
            "owner",
            "group",
            "force",
            "backup",
            "follow",
            "validate",
            "newline_sequence",
            "trim_blocks",
            "lstrip_blocks",
            "variable_start_string",
            "variable_end_string",
            "block_start_string",
            "block_end_string",
            "comment_start_string",
            "comment_end_string",
            "output_encoding",
            "unsafe_writes",
        ]
    }
    fn run(&self, args: &Vars, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        run_inner(args, ctx).map(|r| super::util::with_mode_warning(args, r))
    }
}

fn run_inner(args: &Vars, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
    let m = "template";
    let src = req_str(args, m, &["src"])?;
    let ca = CopyArgs::from_args(args, m)?;
    if ca.attrs.mode == Some(super::util::Mode::Preserve) {
        return Err(arg_err(m, "mode=preserve is not supported for templates"));
    }
    let newline = arg_choice(args, m, "newline_sequence", &["\\n", "\\r", "\\r\\n"])?;
    let path = ModuleCtx::find_local(&ctx.template_search, &src)
        .ok_or_else(|| not_found(&src, &ctx.template_search))?;
    let source = std::fs::read_to_string(&path).map_err(|e| {
        ModuleError::Local(format!("template: cannot read {}: {e}", path.display()))
    })?;
    let rendered = ctx
        .templater
        .render(&source, &path.display().to_string())
        .map_err(|e| ModuleError::Local(format!("template: {}: {e}", path.display())))?;
    let rendered = match newline.as_deref() {
        Some("\\r\\n") => rendered.replace("\r\n", "\n").replace('\n', "\r\n"),
        Some("\\r") => rendered.replace("\r\n", "\n").replace('\n', "\r"),
        _ => rendered,
    };
    let mut new = NewContent::from_bytes(rendered.into_bytes(), Some(basename(&src)));
    new.src = Some(path.display().to_string());
    copy_file(ctx, m, &ca, &new)
}

#[cfg(test)]
mod tests {
    use super::super::util::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_and_writes_idempotently() {
        let local = tempfile::tempdir().unwrap();
        std::fs::create_dir(local.path().join("templates")).unwrap();
        std::fs::write(
            local.path().join("templates/motd.j2"),
            "Hello from {{ name }}\n",
        )
        .unwrap();
        let remote = tempfile::tempdir().unwrap();
        let dest = remote.path().join("motd");
        let a = args(json!({"src": "motd.j2", "dest": dest.to_str().unwrap(), "mode": "0600"}));
        let search = vec![local.path().join("templates"), local.path().to_path_buf()];
        let mut r = LocalRemote::default();
        let res = Template
            .run(&a, &mut ctx(&mut r, false, true, search.clone()))
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        let want = format!(
            "Hello from {}\n",
            local.path().join("templates/motd.j2").display()
        );
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), want);
        assert_eq!(res.diff[0].after, want);
        let res = Template
            .run(&a, &mut ctx(&mut r, false, true, search))
            .unwrap();
        assert!(!res.changed, "{res:?}");
    }

    #[test]
    fn render_errors_and_missing_templates_are_clear() {
        let local = tempfile::tempdir().unwrap();
        std::fs::write(local.path().join("bad.j2"), "{{ fail }}").unwrap();
        let mut r = FakeRemote::default();
        let search = vec![local.path().to_path_buf()];
        let e = Template
            .run(
                &args(json!({"src": "bad.j2", "dest": "/tmp/x"})),
                &mut ctx(&mut r, false, false, search.clone()),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("'fail' is undefined"), "{e}");
        assert!(e.contains("bad.j2"), "{e}");
        let e = Template
            .run(
                &args(json!({"src": "missing.j2", "dest": "/tmp/x"})),
                &mut ctx(&mut r, false, false, search),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("Could not find or access 'missing.j2'"), "{e}");
        assert!(r.seen.is_empty());
    }

    #[test]
    fn newline_sequence_converts() {
        let local = tempfile::tempdir().unwrap();
        std::fs::write(local.path().join("t"), "a\nb\n").unwrap();
        let remote = tempfile::tempdir().unwrap();
        let dest = remote.path().join("o");
        let a =
            args(json!({"src": "t", "dest": dest.to_str().unwrap(), "newline_sequence": "\\r\\n"}));
        let mut r = LocalRemote::default();
        Template
            .run(
                &a,
                &mut ctx(&mut r, false, false, vec![local.path().to_path_buf()]),
            )
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"a\r\nb\r\n");
    }
}
