//! Procedural macros for crew. Use them through the `crew` crate (`#[crew::task]`), not directly.

use proc_macro::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{parse_macro_input, FnArg, ItemFn, ReturnType};

/// Registers a function as a task that other processes can run by name.
///
/// The function stays an ordinary `fn` (call it, pass it to a thread pool); the attribute adds a
/// registration under the stable name `module_path!()::name`, which a process pool, a
/// `crew::process::spawn` child and (later) a cluster worker use to find it. It must be a free,
/// non-generic, non-async function of exactly one argument whose type, like the return type, is
/// serde-serializable. Use `()` as the argument of a function that needs none. The function is
/// marked `#[inline(never)]`: processes find it by its address, which must be unique.
///
/// See the `crew::task` documentation for an example.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new(attr.span(), "#[crew::task] takes no arguments")
            .to_compile_error()
            .into();
    }
    let function = parse_macro_input!(item as ItemFn);
    match expand(&function) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#function #error).into()
        }
    }
}

fn expand(function: &ItemFn) -> syn::Result<proc_macro2::TokenStream> {
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
    let name_string = name.to_string();
    // The parent finds a task by the address of the `fn` pointer it is given. A small function
    // that may be inlined can be emitted once per codegen unit, each copy with its own address;
    // `inline(never)` keeps exactly one.
    Ok(quote! {
        #[inline(never)]
        #function

        const _: () = {
            fn __crew_call(input: &[u8]) -> ::core::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                ::crew::__private::call_one::<#argument_type, #return_type>(#name, input)
            }
            fn __crew_call_chunk(input: &[u8]) -> ::core::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                ::crew::__private::call_chunk::<#argument_type, #return_type>(#name, input)
            }
            fn __crew_address() -> usize {
                #name as fn(#argument_type) -> #return_type as usize
            }
            ::crew::__private::inventory::submit! {
                ::crew::__private::TaskEntry {
                    name: ::core::concat!(::core::module_path!(), "::", #name_string),
                    address: __crew_address,
                    call: __crew_call,
                    call_chunk: __crew_call_chunk,
                }
            }
        };
    })
}
