//! Procedural macros for crew. Use them through the `crew` crate (`#[crew::task]`), not directly.

use proc_macro::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{parse_macro_input, FnArg, ItemFn, ReturnType};

/// Registers a function as a task that other processes can run by name.
///
/// The function stays an ordinary `fn` (call it, pass it to a thread pool); the attribute adds a
/// registration under a stable name, `module_path!()::name` or the one given with
/// `#[crew::task(name = "stable::name")]`, which a process pool, a `crew::process::spawn` child
/// and (later) a cluster worker use to find it. The caller's side finds the registration from
/// the function's own type (`TypeId` of the fn item), never from its address. It must be a
/// free, non-generic, non-async function of exactly one argument whose type, like the return
/// type, is serde-serializable. Use `()` as the argument of a function that needs none.
///
/// See the `crew::task` documentation for an example.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut name: Option<syn::LitStr> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            let value: syn::LitStr = meta.value()?.parse()?;
            if value.value().is_empty() {
                return Err(syn::Error::new(value.span(), "a task name cannot be empty"));
            }
            name = Some(value);
            Ok(())
        } else {
            Err(meta.error("#[crew::task] takes only `name = \"stable::name\"`"))
        }
    });
    parse_macro_input!(attr with parser);
    let function = parse_macro_input!(item as ItemFn);
    match expand(&function, name.as_ref()) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#function #error).into()
        }
    }
}

fn expand(
    function: &ItemFn,
    task_name: Option<&syn::LitStr>,
) -> syn::Result<proc_macro2::TokenStream> {
    let signature = &function.sig;
    if let Some(asyncness) = &signature.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            "#[crew::task] functions cannot be async: a worker calls them synchronously",
        ));
    }
    if !signature.generics.params.is_empty() || signature.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            signature.generics.span(),
            "#[crew::task] functions cannot be generic: each task needs one stable name; \
             register a non-generic wrapper per type instead",
        ));
    }
    if signature.inputs.len() != 1 {
        return Err(syn::Error::new(
            signature.inputs.span(),
            "#[crew::task] functions take exactly one argument (use a tuple for several, \
             `()` for none), as `Executor::submit(f, arg)` passes one",
        ));
    }
    let argument_type = match &signature.inputs[0] {
        FnArg::Typed(pattern) => &pattern.ty,
        FnArg::Receiver(receiver) => {
            return Err(syn::Error::new(
                receiver.span(),
                "#[crew::task] cannot be a method; make it a free function",
            ))
        }
    };
    let return_type = match &signature.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let name = &signature.ident;
    let registered_name = match task_name {
        Some(task_name) => quote!(#task_name),
        None => {
            let name_string = name.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #name_string))
        }
    };
    Ok(quote! {
        #function

        const _: () = {
            fn __crew_call(input: &[u8]) -> ::core::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                ::crew::__private::call_one::<#argument_type, #return_type>(#name, input)
            }
            fn __crew_call_chunk(input: &[u8]) -> ::core::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                ::crew::__private::call_chunk::<#argument_type, #return_type>(#name, input)
            }
            fn __crew_type_id() -> ::core::any::TypeId {
                ::crew::__private::type_id_of(&#name)
            }
            ::crew::__private::inventory::submit! {
                ::crew::__private::TaskEntry {
                    name: #registered_name,
                    type_id: __crew_type_id,
                    argument: ::core::any::type_name::<#argument_type>,
                    result: ::core::any::type_name::<#return_type>,
                    call: __crew_call,
                    call_chunk: __crew_call_chunk,
                }
            }
        };
    })
}

/// Makes an `impl` block an actor: implements `crew::actor::Actor` for the type and generates a
/// typed reference, `<Type>Ref`, whose methods mirror the actor's.
///
/// In the block: `fn new(..) -> Self` is the constructor (its arguments, serde values, are the
/// actor's `Args`: one type, or a tuple for several); `on_start(&mut self)` (returning `()` or
/// `Result<(), E: Display>`) and `on_stop(&mut self)` are the hooks; every other method with a
/// `&self` or `&mut self` receiver is an actor method, and gets on the reference a call
/// returning `TaskHandle<R>`, `tell_`, `try_`, `_async` and `tell_.._async` forms. A method
/// whose name or forms would hide the reference's own methods (`stop`, `kill`, `uid`,
/// `address`, `clone`, `ask`, `tell_shared`, ...) or another method's forms (`send` and
/// `tell_send`) is refused at compile time: rename it. A method marked `#[stream]`
/// returns `impl Iterator<Item = T> + Send + 'static` and gets a call returning
/// `ActorStream<T>`. Associated functions without a receiver stay as they are.
///
/// `#[crew::actor(stateless)]` also implements `StatelessActor` and refuses `&mut self`
/// methods; `#[crew::actor(name = "stable::Name")]` fixes the name worker processes find the
/// type by (default `module_path::Type`). Generic methods, generic impls, `async` methods and
/// by-value receivers are refused at compile time.
///
/// # Visibility of the reference
///
/// An attribute over an `impl` block cannot see how visible the type is, so the rule is:
/// **`<Type>Ref` is as visible as the constructor `new`**. `pub fn new` gives a
/// `pub struct CounterRef`, usable wherever `Counter` is (another module, another crate);
/// a private `fn new` keeps `CounterRef` private to the module, as the type itself usually
/// is. An explicit visibility overrides the rule: `#[crew::actor(pub)]`,
/// `#[crew::actor(pub(crate))]` (or the older spelling `vis = "pub"`).
///
/// The reference can be no more visible than the actor type (it dereferences to
/// `ActorRef<Type>`), nor the type more visible than a reference its `Actor` impl names:
/// the two must match. `pub struct Counter` with a private `fn new` fails with "private type
/// `CounterRef` in public interface" (E0446) pointing at `fn new`: make `new` `pub`, or write
/// `#[crew::actor(pub)]`. A private `struct Counter` with `pub fn new` fails with "private
/// type `Counter` in public interface", also at `fn new`: drop the `pub` from `new`, or give
/// the reference the type's visibility (`#[crew::actor(pub(self))]` for a private type).
///
/// ```text
/// pub mod counters {
///     pub struct Counter { value: u64 }
///
///     #[crew::actor]
///     impl Counter {
///         pub fn new(start: u64) -> Self { Counter { value: start } }
///         pub fn incr(&mut self, by: u64) -> u64 { self.value += by; self.value }
///     }
/// }
/// // elsewhere: counters::CounterRef is public, like counters::Counter
/// let counter: counters::CounterRef = crew::actor::spawn::<counters::Counter>(0)?;
/// ```
#[proc_macro_attribute]
pub fn actor(attr: TokenStream, item: TokenStream) -> TokenStream {
    let arguments = parse_macro_input!(attr as actor::Arguments);
    let mut block = parse_macro_input!(item as syn::ItemImpl);
    match actor::expand(&mut block, arguments) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#block #error).into()
        }
    }
}

mod actor;
