//! `template`: render a local Jinja template with the task's variables (via
//! [`ModuleCtx::templater`]) and put the result in place exactly like `copy` with content.

use super::copy::{copy_file, not_found, CopyArgs, NewContent, COPY_COMMON};
use super::mode::Mode;
use super::write::{basename, FILE_COMMON};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};

pub struct Template;

const SPEC: Spec = Spec::new(
    "template",
    &[
        Param::path("src").required(),
        Param::str("newline_sequence")
            .choices(&["\\n", "\\r", "\\r\\n"])
            .default("\\n"),
        Param::bool("trim_blocks").only("true"),
        Param::bool("lstrip_blocks").only("false"),
        Param::str("variable_start_string").only("{{"),
        Param::str("variable_end_string").only("}}"),
        Param::str("block_start_string").only("{%"),
        Param::str("block_end_string").only("%}"),
        Param::str("comment_start_string").only("{#"),
        Param::str("comment_end_string").only("#}"),
        Param::str("output_encoding").only("utf-8"),
    ],
)
.shared(&[COPY_COMMON, FILE_COMMON]);

impl Module for Template {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let src = args.req_str("src")?;
        let ca = CopyArgs::from_args(args)?;
        if ca.attrs.mode == Some(Mode::Preserve) {
            return Err(ModuleError::Args(
                "mode=preserve is not supported for templates".into(),
            ));
        }
        let newline = args.choice("newline_sequence")?;
        let path = ModuleCtx::find_local(&ctx.template_search, &src)
            .ok_or_else(|| not_found(&src, &ctx.template_search))?;
        let bytes = crate::vault::read_file(&path).map_err(ModuleError::Local)?;
        let source = String::from_utf8(bytes).map_err(|_| {
            ModuleError::Local(format!("cannot read {}: not UTF-8", path.display()))
        })?;
        let rendered = ctx
            .templater
            .render(&source, &path.display().to_string())
            .map_err(|e| ModuleError::Local(format!("{}: {e}", path.display())))?;
        let rendered = match newline.as_deref() {
            Some("\\r\\n") => rendered.replace("\r\n", "\n").replace('\n', "\r\n"),
            Some("\\r") => rendered.replace("\r\n", "\n").replace('\n', "\r"),
            _ => rendered,
        };
        let mut new = NewContent::from_bytes(rendered.into_bytes(), Some(basename(&src)));
        new.src = Some(path.display().to_string());
        copy_file(ctx, args.module(), &ca, &new)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
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
            .execute(&a, &mut ctx(&mut r, false, true, search.clone()))
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        let want = format!(
            "Hello from {}\n",
            local.path().join("templates/motd.j2").display()
        );
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), want);
        assert_eq!(res.diff[0].after, want);
        let res = Template
            .execute(&a, &mut ctx(&mut r, false, true, search))
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
            .execute(
                &args(json!({"src": "bad.j2", "dest": "/tmp/x"})),
                &mut ctx(&mut r, false, false, search.clone()),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("'fail' is undefined"), "{e}");
        assert!(e.contains("bad.j2"), "{e}");
        let e = Template
            .execute(
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
            .execute(
                &a,
                &mut ctx(&mut r, false, false, vec![local.path().to_path_buf()]),
            )
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"a\r\nb\r\n");
    }
}
