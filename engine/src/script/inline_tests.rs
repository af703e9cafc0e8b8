//! Unit tests for `inline.rs`.

use super::*;

#[test]
fn trigger_conditions_qualify() {
    for (src, want) in [
        (r#"finding.resources.some(|r| r.type == "Instance")"#, 1),
        ("finding.severity >= 7.0 && finding.resources.len() > 0", 1),
        (
            r#"finding.type.starts_with("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration")
      || finding.severity >= 7"#,
            1,
        ),
        (
            r#"event["detail-type"] == "GuardDuty Finding" && event.detail?.service?.count > 5"#,
            1,
        ),
        (
            r#"!("prod" in finding.tags.keys()) || finding.account in vars.accounts"#,
            1,
        ),
        (
            r#"let r = finding.resources[0]; r.type == "Instance" && `${r.id}`.len() > 2"#,
            2,
        ),
        (
            r#"finding.resources.filter(|r| r.type != "AwsAccount").len() >= vars.min"#,
            1,
        ),
        (r#"finding.resources.map(|r| r.id).contains("i-1")"#, 1),
        (
            r#"if finding.severity > 7 { true } else { finding.title.to_lower().contains("tor") }"#,
            1,
        ),
        (
            r#"let x = 1; x += 2; switch finding.kind { "a" => true, _ => x > 2 }"#,
            3,
        ),
        (
            r#"finding.resources.index_of(|r, i| i > 0 && r.id <= "i-5") >= 0"#,
            1,
        ),
        (
            r#"finding?.steps?.x == () || finding.tags?["env"] == "prod""#,
            1,
        ),
    ] {
        assert_eq!(growth(src), Some(want), "{src}");
    }
}

#[test]
fn loops_functions_and_dynamic_calls_do_not_qualify() {
    for src in [
        "let a = []; loop { a = [a]; }",
        "let n = 0; for i in 0..10 { n += i; } n > 1",
        "let n = 0; while n < 3 { n += 1; } true",
        "let n = 0; do { n += 1; } while n < 3; true",
        "fn f(x) { x } f(1) == 1",
        r#"Fn("f").call(1)"#,
        r#"call(Fn("f"), 1)"#,
        "let f = |x| x; f.call(1)",
        "let f = |x| x; f(1)",
        r#"eval("1")"#,
        "[1].map(|x| x).curry(1)",
    ] {
        assert_eq!(growth(src), None, "{src}");
    }
}

#[test]
fn value_builders_do_not_qualify() {
    for src in [
        "[finding] == [finding]",
        "let a = finding; a.x = [a]; true",
        "#{a: finding}.a == finding",
        "finding.x in [1, 2]",
        "finding.x ?? [1]",
        "let a = []; a.push(a); true",
        "let a = []; a.pad(100, a); true",
        "finding.resources.reduce(|acc, r| [acc], []) != ()",
        "finding.resources.retain(|r| true); true",
        "print(finding); true",
        "finding.resources.sort(); true",
        "finding.x | 1",
    ] {
        assert_eq!(growth(src), None, "{src}");
    }
}

#[test]
fn closure_bodies_must_be_pure_and_flat() {
    for src in [
        "let a = []; finding.resources.some(|r| { a = [a]; false })",
        "let n = 0; finding.resources.some(|r| { n += 1; false })",
        "let n = 1; finding.resources.some(|r| { n <<= 1; false })",
        "finding.resources.some(|r| { let x = r; false })",
        "finding.resources.some(|r| r.tags.some(|t| t == 1))",
        "finding.resources.some(|r| r.tags.push(1))",
        "finding.resources.some(|r| [r] == [r])",
        "finding.resources.some(|r| || r)",
        "finding.resources.some(f)",
        r#"finding.resources.filter("f")"#,
        "finding.resources.some(|r| r.x ?? [1])",
    ] {
        assert_eq!(growth(src), None, "{src}");
    }
}

#[test]
fn code_inside_strings_and_comments_is_not_code_but_interpolations_are() {
    assert_eq!(
        growth(r#""loop { [a] }" == finding.title // for x in [1] { }"#),
        Some(1)
    );
    assert_eq!(
        growth("`${finding.title}` /* fn f() {} */ == \"x\""),
        Some(1)
    );
    assert_eq!(growth("`${ [finding] }`.len() > 0"), None);
    assert_eq!(growth("`${ finding.x.push(1) }` != \"\""), None);
    // An unterminated construct is never judged from part of the tokens.
    assert_eq!(growth("finding.x == \"abc"), None);
}

mod on_the_callers_stack {
    use serde_json::{json, Value};

    use super::super::super::{value, Context, Limits, Sandbox};
    use super::growth;

    /// `levels` alternating maps and arrays around a string.
    fn nested(levels: usize) -> Value {
        let mut v = json!("leaf");
        for i in 0..levels {
            v = if i % 2 == 0 {
                json!({ "k": v })
            } else {
                json!([v])
            };
        }
        v
    }

    /// `inner` inside as many parentheses as the compile limits allow around `around(...)`.
    fn deepest(sb: &Sandbox, around: impl Fn(&str) -> String, inner: &str) -> String {
        let wrap = |n: usize| around(&format!("{}{inner}{}", "(".repeat(n), ")".repeat(n)));
        let mut n = 0;
        while sb.compile(&wrap(n + 1)).is_ok() {
            n += 1;
        }
        assert!(n > 10, "{}", wrap(n));
        wrap(n)
    }

    #[test]
    fn inline_evaluations_fit_their_stack() {
        // The deepest context the conversion keeps, and scripts that qualify for the caller's
        // stack and make Rhai recurse over it in every way it does (compare, print, clone,
        // size checks, closures called by iterators), at the deepest expression nesting the
        // compile limits allow. Each runs in exactly the stack `inline_stack` asks for: if that
        // were too little, this test would die of a stack overflow.
        let sb = Sandbox::new(Limits::default());
        let deep = nested(value::MAX_DEPTH + 50);
        let finding = json!({ "x": deep, "resources": [{ "d": deep }, { "d": 1 }], "s": 5 });
        let ctx = Context::default().with_finding(&finding);
        assert_eq!(ctx.depth, value::MAX_DEPTH);
        let plain = |s: &str| s.to_string();
        let in_closure = |s: &str| format!("finding.resources.some(|r| {s})");
        let mut sources = vec![
            deepest(&sb, plain, "finding.x == finding.x"),
            deepest(&sb, plain, "`${finding.x}`.len() > 0"),
            deepest(
                &sb,
                plain,
                "finding.x.to_string() != finding.resources.to_string()",
            ),
            deepest(&sb, in_closure, "r.d == r.d"),
            deepest(&sb, in_closure, "`${r}`.len() < 2"),
            "let x = finding.x; finding.resources.filter(|r| r.d == x).len() > 0".to_string(),
            "finding.resources.map(|r| r.d).contains(finding.x)".to_string(),
            "finding.x in finding.resources.map(|r| r.d)".to_string(),
            "let y = finding.x; let z = y; z == finding.x".to_string(),
            // Assignments nest the deepest value further, one level each.
            "let a = finding; a.k = a; a.k.k = a; a.j = a; a == a".to_string(),
            "let a = finding.resources; a += a; a[0] = a; a[1] = a; a == a".to_string(),
        ];
        sources.push(format!(
            "{} && {}",
            sources[0],
            deepest(&sb, in_closure, "r.d != ()")
        ));
        for src in &sources {
            let script = sb.compile(src).expect("compiles");
            assert_eq!(script.growth, growth(src));
            let need = sb
                .inline_stack(script.growth, &ctx)
                .unwrap_or_else(|| panic!("{src} qualifies"));
            let result = stacker::grow(need, || sb.core.eval_json(&script, &ctx));
            assert!(result.is_ok(), "{src}: {result:?}");
        }
    }

    #[test]
    fn hostile_scripts_never_run_on_the_callers_stack() {
        // Every script of the sandbox's hostile tests builds or walks values, loops or recurses
        // beyond what the shape check can bound: all of them keep the deep stack.
        for src in [
            "loop {}",
            "while true {}",
            "let n = 0; for i in 0..1000000000 { n += i; } n",
            "fn f() { loop {} } f()",
            "fn f(x) { f(x + 1) } f(0)",
            "fn a(x) { call(Fn(\"b\"), x) } fn b(x) { a(x) } a(0)",
            r#"let s = "x"; loop { s += s; }"#,
            r#""x".pad(100000000, "y")"#,
            "let a = [1]; loop { a += a; }",
            "let a = []; a.pad(1000000000, 0); a",
            "let a = []; loop { a = [a, a]; }",
            "let a = []; loop { a.push(1); }",
            "let a = []; for i in 0..1000 { a = [a]; } a == a",
            "let a = []; for i in 0..1000 { a = #{x: a}; } `${a}`.len()",
            "let m = #{a: 1}; loop { m = #{a: m, b: m}; }",
            "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }",
            "try { loop {} } catch { 1 }",
            "sleep(100)",
            r#"let f = Fn("x"); f = f.curry(f); 1"#,
        ] {
            assert_eq!(growth(src), None, "{src}");
        }
    }
}
