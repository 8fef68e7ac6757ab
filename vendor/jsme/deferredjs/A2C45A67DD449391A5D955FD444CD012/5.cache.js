$wnd.jsme.runAsyncCallback5('x(726,614,ln);_.Zd=function(){this.a.F&&($1(this.a.F),this.a.F=null);0==this.a.r.w&&(this.a.F=new e2(2,this.a))};R(uZ)(5);\n//@ sourceURL=5.js\n')
